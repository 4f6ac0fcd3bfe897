namespace ImgTool.Machine.Tests;

internal static class TestPaths
{
    /// <summary>The repository root: the first folder above the test binaries that holds ImgTool.sln.</summary>
    public static string RepositoryRoot
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ImgTool.sln")))
            {
                directory = directory.Parent;
            }

            return directory?.FullName ?? throw new InvalidOperationException("ImgTool.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>../shared/cpu-tests beside the repository (the project's shared folder).</summary>
    public static string CpuTests => Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared", "cpu-tests"));
}

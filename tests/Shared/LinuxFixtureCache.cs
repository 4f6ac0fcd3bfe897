using System.Security.Cryptography;

namespace ImgTool.TestSupport;

/// <summary>
/// Where the Linux boot fixture (tools/fixtures/make-linux-disk.sh) is cached: one folder per hash of the script and
/// of tools/fixtures/linux/ (names and contents), shared by the boot tests and the inspect tests, so a run builds
/// each variant once and a change to the script builds it anew.
/// </summary>
public static class LinuxFixtureCache
{
    private static readonly Lazy<string> CachedFolder = new(() => Path.Combine(Path.GetTempPath(), "imgtool-linux-fixture", Key()));

    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string ScriptPath => Path.Combine(RepositoryRoot, "tools", "fixtures", "make-linux-disk.sh");

    public static string Folder => CachedFolder.Value;

    private static string Key()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var files = new List<string> { ScriptPath };
        files.AddRange(Directory.EnumerateFiles(Path.Combine(RepositoryRoot, "tools", "fixtures", "linux"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
        foreach (string file in files)
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(Path.GetRelativePath(RepositoryRoot, file) + "\n"));
            hash.AppendData(File.ReadAllBytes(file));
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }

    private static string FindRepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ImgTool.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException($"no ImgTool.sln above {AppContext.BaseDirectory}");
    }
}

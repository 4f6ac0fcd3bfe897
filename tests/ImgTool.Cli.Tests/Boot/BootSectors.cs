using System.Diagnostics;

namespace ImgTool.Cli.Tests.Boot;

/// <summary>The hand-written boot sectors under fixtures/bootsector, assembled with nasm (tools/test.sh installs Debian's 'nasm').</summary>
internal static class BootSectors
{
    public static byte[] Assemble(string name, string workDirectory)
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ImgTool.sln")))
        {
            directory = directory.Parent;
        }

        Assert.NotNull(directory);
        string source = Path.Combine(directory.FullName, "fixtures", "bootsector", name);
        string binary = Path.Combine(workDirectory, Path.ChangeExtension(name, ".bin"));
        using var nasm = Process.Start(new ProcessStartInfo("nasm", ["-f", "bin", "-o", binary, source]) { RedirectStandardError = true })!;
        string errors = nasm.StandardError.ReadToEnd();
        nasm.WaitForExit();
        Assert.True(nasm.ExitCode == 0, "nasm failed: " + errors);
        byte[] sector = File.ReadAllBytes(binary);
        Assert.Equal(512, sector.Length);
        return sector;
    }
}

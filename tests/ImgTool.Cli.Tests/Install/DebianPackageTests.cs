
namespace ImgTool.Cli.Tests.Install;

/// <summary>
/// tools/package-deb.sh (issue 18): the .deb is well formed (dpkg-deb --info/--contents), installs with dpkg -i into
/// a private root (its own dpkg database: this machine's is not touched), its imgtool and the self-contained machine
/// host run from there, and dpkg -r removes them again. Packs the binaries tools/build.sh left in out/bin.
/// </summary>
public sealed class DebianPackageTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"imgtool-deb-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public void The_package_installs_with_dpkg_runs_and_removes_cleanly()
    {
        string repository = ImgTool.TestSupport.LinuxFixtureCache.RepositoryRoot;
        string built = HostProcess.Run(Path.Combine(repository, "tools", "package-deb.sh"), ["--no-build"], repository);
        string package = built.Trim().Split("package built: ")[^1].Trim();
        Assert.True(File.Exists(package), built);

        string version = HostProcess.Run(Path.Combine(repository, "out", "bin", "imgtool"), ["--version"], repository).Trim().Replace("imgtool version ", "", StringComparison.Ordinal);
        string info = HostProcess.Run("dpkg-deb", ["--info", package], repository);
        Assert.Contains("Package: imgtool", info);
        Assert.Contains($"Version: {version}", info);
        string contents = HostProcess.Run("dpkg-deb", ["--contents", package], repository);
        foreach (string path in new[] { "./usr/bin/imgtool -> ../lib/imgtool/imgtool", "./usr/lib/imgtool/machine/imgtool-machine", "./usr/share/man/man1/imgtool.1.gz",
            "./usr/share/bash-completion/completions/imgtool", "./usr/share/zsh/vendor-completions/_imgtool" })
        {
            Assert.Contains(path, contents);
        }

        foreach (string folder in new[] { "info", "updates", "triggers" })
        {
            Directory.CreateDirectory(Path.Combine(_root, "var", "lib", "dpkg", folder));
        }

        File.WriteAllText(Path.Combine(_root, "var", "lib", "dpkg", "status"), "");
        HostProcess.Run("dpkg", [$"--root={_root}", "--force-depends", "-i", package], repository);
        Assert.Equal($"imgtool version {version}", HostProcess.Run(Path.Combine(_root, "usr", "bin", "imgtool"), ["--version"], Path.GetTempPath()).Trim());
        Assert.Equal($"imgtool version {version}", HostProcess.Run(Path.Combine(_root, "usr", "lib", "imgtool", "machine", "imgtool-machine"), ["--version"], Path.GetTempPath()).Trim());

        HostProcess.Run("dpkg", [$"--root={_root}", "-r", "imgtool"], repository);
        Assert.False(File.Exists(Path.Combine(_root, "usr", "bin", "imgtool")) || Directory.Exists(Path.Combine(_root, "usr", "lib", "imgtool")));
    }
}

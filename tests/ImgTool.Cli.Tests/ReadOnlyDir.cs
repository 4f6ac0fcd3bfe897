using System.Diagnostics;

namespace ImgTool.Cli.Tests;

/// <summary>
/// A folder nobody can create files in. chmod is enough for a normal user; root ignores it, so as
/// root the folder is made immutable (chattr +i) or a read-only tmpfs is mounted on it.
/// </summary>
internal sealed class ReadOnlyDir : IDisposable
{
    private readonly bool _immutable;
    private readonly bool _mounted;

    public ReadOnlyDir(string path)
    {
        Path = path;
        Directory.CreateDirectory(path);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        if (IsWritable())
        {
            _immutable = Run("chattr", "+i", path) && !IsWritable();
        }

        if (IsWritable())
        {
            _mounted = Run("mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", path) && !IsWritable();
        }

        if (IsWritable())
        {
            throw new InvalidOperationException($"could not make {path} read-only (chmod, chattr +i and a read-only mount all failed)");
        }
    }

    public string Path { get; }

    public void Dispose()
    {
        if (_immutable)
        {
            Run("chattr", "-i", Path);
        }

        if (_mounted)
        {
            Run("umount", Path);
        }

        File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private bool IsWritable()
    {
        string probe = System.IO.Path.Combine(Path, ".probe");
        try
        {
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static bool Run(string tool, params string[] args)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(tool, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            process.WaitForExit();
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}

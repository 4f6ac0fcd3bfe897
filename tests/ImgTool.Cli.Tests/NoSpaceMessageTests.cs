using System.Diagnostics;

namespace ImgTool.Cli.Tests;

/// <summary>
/// Issue 19 item 9: a full file system (ENOSPC) is reported naming the file that could not be written, on one line,
/// for every way a command fills a file: preallocation, data writes, metadata writes. The full file system is a
/// 1 MiB tmpfs (the tests run as root, as tools/test.sh does).
/// </summary>
public sealed class NoSpaceMessageTests : IDisposable
{
    private readonly TempDir _directory = new();
    private readonly string _full;

    public NoSpaceMessageTests()
    {
        _full = _directory.File("full");
        Directory.CreateDirectory(_full);
        using var mount = Process.Start("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", _full])!;
        mount.WaitForExit();
        Assert.True(mount.ExitCode == 0, $"mount -t tmpfs failed (exit {mount.ExitCode}): the ENOSPC tests need root, as tools/test.sh runs them");
    }

    public void Dispose()
    {
        using (var umount = Process.Start("umount", [_full])!)
        {
            umount.WaitForExit();
        }

        _directory.Dispose();
    }

    [Theory]
    [InlineData("create", "-f", "raw", "-o", "preallocation=full", "TARGET.raw", "4M")]
    [InlineData("create", "-f", "qcow2", "-o", "preallocation=full", "TARGET.qcow2", "4M")]
    [InlineData("create", "-f", "qcow2", "-o", "preallocation=falloc", "TARGET.qcow2", "4M")]
    [InlineData("convert", "-f", "raw", "-O", "raw", "-S", "0", "SOURCE", "TARGET.raw")]
    [InlineData("convert", "-f", "raw", "-O", "qcow2", "SOURCE", "TARGET.qcow2")]
    [InlineData("convert", "-f", "raw", "-O", "vmdk", "SOURCE", "TARGET.vmdk")]
    [InlineData("convert", "-f", "raw", "-O", "vpc", "SOURCE", "TARGET.vhd")]
    [InlineData("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "SOURCE", "TARGET.vmdk")]
    [InlineData("dd", "-f", "raw", "-O", "raw", "if=SOURCE", "of=TARGET.raw")]
    public async Task A_full_file_system_is_reported_naming_the_file(params string[] command)
    {
        string source = _directory.File("source.raw");
        Tools.SparseFile(source, 4 << 20, (0, 4 << 20)); // 4 MiB of random data: it neither fits nor compresses
        string target = string.Empty;
        string[] args = command.Select(arg =>
        {
            if (arg.Contains("TARGET", StringComparison.Ordinal))
            {
                target = Path.Combine(_full, "target" + Path.GetExtension(arg));
                return arg.Replace("TARGET" + Path.GetExtension(arg), target, StringComparison.Ordinal);
            }

            return arg.Replace("SOURCE", source, StringComparison.Ordinal);
        }).ToArray();

        RunResult result = await Tools.Imgtool(args);

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.StartsWith($"imgtool: {target}: ", result.Err, StringComparison.Ordinal);
        Assert.Contains("No space left on device", result.Err, StringComparison.Ordinal);
        Assert.Equal(1, result.Err.Count(c => c == '\n'));
    }
}

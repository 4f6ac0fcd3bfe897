using System.Diagnostics;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Block.Tests;

/// <summary>QEMU-compatible OFD locks: readers share, a writer excludes, -U takes nothing.</summary>
public sealed class ImageLockTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _path;

    public ImageLockTests()
    {
        _path = _dir.File("disk.img");
        using var file = LinuxHostFile.Create(_path);
        file.SetLength(1 << 20);
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Two_readers_share_the_image()
    {
        using var a = LinuxHostFile.Open(_path, new HostOpenOptions(true));
        using var b = LinuxHostFile.Open(_path, new HostOpenOptions(true));
        Assert.Equal(1 << 20, b.Length);
    }

    [Fact]
    public void A_second_writer_is_refused_with_a_message_naming_the_lock()
    {
        using var writer = LinuxHostFile.Open(_path, new HostOpenOptions(false));
        var e = Assert.Throws<ImageLockedException>(() => LinuxHostFile.Open(_path, new HostOpenOptions(false)));
        Assert.Contains("in use by another process", e.Message, StringComparison.Ordinal);
        Assert.Contains("\"write\" lock", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_reader_is_refused_while_a_writer_holds_the_image_unless_it_forces_sharing()
    {
        using var writer = LinuxHostFile.Open(_path, new HostOpenOptions(false));
        var e = Assert.Throws<ImageLockedException>(() => LinuxHostFile.Open(_path, new HostOpenOptions(true)));
        Assert.Contains("-U gives read-only shared access", e.Message, StringComparison.Ordinal);
        using var shared = LinuxHostFile.Open(_path, new HostOpenOptions(true, Lock: HostLockMode.None));
        Assert.Equal(1 << 20, shared.Length);
    }

    [Fact]
    public void Create_does_not_truncate_an_image_in_use()
    {
        using var reader = LinuxHostFile.Open(_path, new HostOpenOptions(true));
        Assert.Throws<ImageLockedException>(() => LinuxHostFile.Create(_path));
        Assert.Equal(1 << 20, new FileInfo(_path).Length);
    }

    [Fact]
    public void Locks_are_released_on_close()
    {
        LinuxHostFile.Open(_path, new HostOpenOptions(false)).Dispose();
        using var again = LinuxHostFile.Open(_path, new HostOpenOptions(false));
    }

    [Fact]
    public void Force_share_is_refused_for_writable_opens() =>
        Assert.Throws<InvalidOptionException>(() => LinuxHostFile.Open(_path, new HostOpenOptions(false, Lock: HostLockMode.None)));

    /// <summary>The real qemu-img must see our write lock: its convert refuses a source that is being written.</summary>
    [Fact]
    public void Qemu_img_sees_our_write_lock()
    {
        using var writer = LinuxHostFile.Open(_path, new HostOpenOptions(false));
        var qemu = Process.Start(new ProcessStartInfo("qemu-img", ["convert", "-O", "raw", _path, _dir.File("copy.img")]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        string error = qemu.StandardError.ReadToEnd();
        qemu.WaitForExit();
        Assert.NotEqual(0, qemu.ExitCode);
        Assert.Contains("Failed to get shared \"write\" lock", error, StringComparison.Ordinal);
    }

    /// <summary>And we see QEMU's: while qemu-io has the image open for writing, we cannot open it even to read.</summary>
    [Fact]
    public async Task We_see_qemu_write_locks()
    {
        // qemu-io holds its locks for as long as it waits for commands on stdin.
        var qemu = Process.Start(new ProcessStartInfo("qemu-io", ["-f", "raw", _path]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true })!;
        try
        {
            ImageLockedException? error = null;
            for (int i = 0; i < 250 && error is null; i++)
            {
                await Task.Delay(20);
                try
                {
                    LinuxHostFile.Open(_path, new HostOpenOptions(true)).Dispose();
                }
                catch (ImageLockedException e)
                {
                    error = e;
                }
            }

            Assert.NotNull(error);
            Assert.Contains("shared \"write\" lock", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            qemu.StandardInput.Close();
            if (!qemu.WaitForExit(5000))
            {
                qemu.Kill();
            }
        }
    }
}

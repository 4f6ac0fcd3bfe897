using System.Security.Cryptography;
using ImgTool.Block.Host;
using ImgTool.Operations.Boot;

namespace ImgTool.Cli.Tests.Boot;

/// <summary>
/// imgtool boot --cache and --writable with fixtures/bootsector/write.asm, a boot sector that writes
/// four sectors through INT 13h and reads them back: the guest always sees its writes; only
/// --writable lets them reach the image, whatever the cache mode.
/// </summary>
public sealed class BootCacheTests : IDisposable
{
    private const int PatternSectors = 4;
    private const byte Pattern = 0x5A;
    private readonly string _directory = Directory.CreateTempSubdirectory("imgtool-boot-cache-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    public static TheoryData<string> Modes => new() { "writeback", "writethrough", "none", "unsafe", "directsync" };

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task Without_writable_the_guest_sees_its_writes_and_the_image_is_unchanged(string mode)
    {
        string image = await MakeImageAsync();
        byte[] before = SHA256.HashData(await File.ReadAllBytesAsync(image));

        var result = await Tools.Imgtool("boot", "-f", "raw", image, "--cache", mode, "--expect", "WRITE VERIFIED", "--timeout", "120s");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(before, SHA256.HashData(await File.ReadAllBytesAsync(image)));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task With_writable_the_guest_writes_reach_the_image(string mode)
    {
        string image = await MakeImageAsync();

        var result = await Tools.Imgtool("boot", "-f", "raw", image, "--writable", "--cache", mode, "--expect", "WRITE VERIFIED", "--timeout", "120s");

        Assert.True(result.ExitCode == 0, result.ToString());
        byte[] written = (await File.ReadAllBytesAsync(image)).AsSpan(512, PatternSectors * 512).ToArray();
        Assert.Equal(Enumerable.Range(0, PatternSectors * 512).Select(i => (byte)(i ^ Pattern)).ToArray(), written);
    }

    [Fact]
    public async Task With_writable_a_qcow2_image_takes_the_writes_and_stays_consistent()
    {
        string raw = await MakeImageAsync();
        string qcow2 = Path.Combine(_directory, "disk.qcow2");
        var convert = await Tools.Imgtool("convert", "-f", "raw", "-O", "qcow2", raw, qcow2);
        Assert.True(convert.ExitCode == 0, convert.ToString());

        var result = await Tools.Imgtool("boot", "-f", "qcow2", qcow2, "--writable", "--cache", "writethrough", "--expect", "WRITE VERIFIED", "--timeout", "120s");
        Assert.True(result.ExitCode == 0, result.ToString());

        string back = Path.Combine(_directory, "back.raw");
        var convertBack = await Tools.Imgtool("convert", "-f", "qcow2", "-O", "raw", qcow2, back);
        Assert.True(convertBack.ExitCode == 0, convertBack.ToString());
        byte[] written = (await File.ReadAllBytesAsync(back)).AsSpan(512, PatternSectors * 512).ToArray();
        Assert.Equal(Enumerable.Range(0, PatternSectors * 512).Select(i => (byte)(i ^ Pattern)).ToArray(), written);
        var check = await Tools.Imgtool("check", qcow2);
        Assert.True(check.ExitCode == 0, check.ToString());
    }

    [Fact]
    public async Task Unknown_cache_mode_is_one_line_on_stderr()
    {
        string image = await MakeImageAsync();
        var result = await Tools.Imgtool("boot", "-f", "raw", image, "--cache", "sometimes");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("invalid cache mode 'sometimes'", result.Err, StringComparison.Ordinal);
        Assert.Single(result.Err.TrimEnd('\n').Split('\n'));
    }

    [Theory]
    [InlineData(CacheMode.Writeback, true)]
    [InlineData(CacheMode.None, true)]
    [InlineData(CacheMode.Unsafe, true)]
    [InlineData(CacheMode.Writethrough, false)]
    [InlineData(CacheMode.DirectSync, false)]
    public void Guest_write_cache_follows_qemu_cache_writeback(CacheMode mode, bool writeCache) =>
        Assert.Equal(writeCache, BootOperation.GuestWriteCache(mode));

    private async Task<string> MakeImageAsync()
    {
        string image = Path.Combine(_directory, "disk.img");
        var bytes = new byte[1 << 20];
        new Random(11).NextBytes(bytes);
        Assemble().CopyTo(bytes, 0);
        await File.WriteAllBytesAsync(image, bytes);
        return image;
    }

    private byte[] Assemble() => BootSectors.Assemble("write.asm", _directory);
}

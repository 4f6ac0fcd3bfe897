using System.Diagnostics;
using System.Security.Cryptography;

namespace ImgTool.Cli.Tests.Boot;

/// <summary>imgtool boot end to end: SeaBIOS, virtio-blk, the fixture boot sector, broken images.</summary>
public sealed class BootCommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("imgtool-boot-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Checksum_boot_sector_boots_and_the_image_is_not_modified()
    {
        string image = Path.Combine(_directory, "boot.img");
        var bytes = new byte[1 << 20];
        new Random(7).NextBytes(bytes);
        Assemble().CopyTo(bytes, 0);
        await File.WriteAllBytesAsync(image, bytes);
        byte[] before = SHA256.HashData(bytes);

        var result = await Tools.Imgtool("boot", "-f", "raw", image, "--expect", "CHECKSUM [0-9A-F]{8}", "--timeout", "120s");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Success:", result.Out, StringComparison.Ordinal);
        Assert.Contains("sectors read", result.Out, StringComparison.Ordinal);
        Assert.Equal(before, SHA256.HashData(await File.ReadAllBytesAsync(image)));
    }

    [Fact]
    public async Task An_image_of_zeros_has_no_bootable_disk()
    {
        string image = Path.Combine(_directory, "zero.img");
        await File.WriteAllBytesAsync(image, new byte[1 << 20]);

        var result = await Tools.Imgtool("boot", "-f", "raw", image, "--expect", "SYSLINUX", "--output", "json");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("\"outcome\": \"NoBootableDisk\"", result.Out, StringComparison.Ordinal);
        Assert.Contains("no bootable disk", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_boot_sector_of_garbage_ends_with_a_diagnosis_within_the_limits()
    {
        string image = Path.Combine(_directory, "garbage.img");
        var bytes = new byte[1 << 20];
        new Random(11).NextBytes(bytes.AsSpan(0, 510));
        bytes[510] = 0x55;
        bytes[511] = 0xAA;
        await File.WriteAllBytesAsync(image, bytes);

        var result = await Tools.Imgtool("boot", "-f", "raw", image, "--expect", "SYSLINUX", "--timeout", "60s", "--max-instructions", "100000000");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("boot failed:", result.Out, StringComparison.Ordinal);
        Assert.Equal("", result.Err);
    }

    [Fact]
    public async Task Missing_firmware_and_bad_patterns_are_errors()
    {
        string image = Path.Combine(_directory, "zero.img");
        await File.WriteAllBytesAsync(image, new byte[1 << 20]);

        var firmware = await Tools.Imgtool("boot", "-f", "raw", image, "--firmware", Path.Combine(_directory, "none.bin"));
        var pattern = await Tools.Imgtool("boot", "-f", "raw", image, "--expect", "(unclosed");

        Assert.Equal(1, firmware.ExitCode);
        Assert.Contains("not found", firmware.Err, StringComparison.Ordinal);
        Assert.Equal(1, pattern.ExitCode);
        Assert.Contains("invalid --expect pattern", pattern.Err, StringComparison.Ordinal);
    }

    /// <summary>Assembles fixtures/bootsector/checksum.asm with nasm (Debian package 'nasm').</summary>
    private byte[] Assemble()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ImgTool.sln")))
        {
            directory = directory.Parent;
        }

        Assert.NotNull(directory);
        string source = Path.Combine(directory.FullName, "fixtures", "bootsector", "checksum.asm");
        string binary = Path.Combine(_directory, "checksum.bin");
        using var nasm = Process.Start(new ProcessStartInfo("nasm", ["-f", "bin", "-o", binary, source]) { RedirectStandardError = true })!;
        string errors = nasm.StandardError.ReadToEnd();
        nasm.WaitForExit();
        Assert.True(nasm.ExitCode == 0, "nasm failed (tools/test.sh installs Debian's 'nasm'): " + errors);
        return File.ReadAllBytes(binary);
    }
}

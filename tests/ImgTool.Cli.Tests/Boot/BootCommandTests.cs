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

    /// <summary>
    /// --trace on the checksum boot sector: the run ends with the sector's CLI; HLT (no --expect, so a halt
    /// is the end), and the trace holds those instructions, the INT 13h calls, the COM1 traffic that printed
    /// the checksum, and the per-port counts.
    /// </summary>
    [Fact]
    public async Task Trace_of_the_checksum_boot_sector_holds_its_instructions_interrupts_and_port_io()
    {
        string image = Path.Combine(_directory, "boot.img");
        var bytes = new byte[1 << 20];
        new Random(7).NextBytes(bytes);
        Assemble().CopyTo(bytes, 0);
        await File.WriteAllBytesAsync(image, bytes);
        string trace = Path.Combine(_directory, "boot.trace");

        var result = await Tools.Imgtool("boot", "-f", "raw", image, "--timeout", "120s", "--trace", trace, "--trace-depth", "5000");

        // Without --expect success is a login prompt, which this sector never prints: it halts, and the
        // trace is written whatever the outcome.
        Assert.True(result.ExitCode == 1, result.ToString());
        string[] lines = await File.ReadAllLinesAsync(trace);
        Assert.StartsWith("# imgtool boot trace", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("# HaltedInterruptsOff: ", lines[1], StringComparison.Ordinal);
        string[] instructions = lines.Where(line => System.Text.RegularExpressions.Regex.IsMatch(line, @"^ *\d+  [0-9A-F]{4}:")).ToArray();
        Assert.Equal(5000, instructions.Length);
        // The sector's last instructions, at its own addresses (0000:7Cxx), as bytes and NASM text.
        Assert.Matches(@"^ *\d+  0000:7C[0-9A-F]{2}      FA +cli$", instructions[^2]);
        Assert.Matches(@"^ *\d+  0000:7C[0-9A-F]{2}      F4 +hlt$", instructions[^1]);
        Assert.Contains(lines, line => line.EndsWith("-- hlt  (waiting for an interrupt)", StringComparison.Ordinal));
        // putc: polls the line status register, then writes the character (the checksum's last digit is in the window).
        Assert.Contains(lines, line => System.Text.RegularExpressions.Regex.IsMatch(line, @"0000:7C[0-9A-F]{2}      EC +in +al,dx$"));
        Assert.Contains(lines, line => line.Contains("-- in   port 0x03FD (COM1) -> 0x", StringComparison.Ordinal));
        Assert.Contains(lines, line => line.Contains("-- out  port 0x03F8 (COM1) <- 0x0A", StringComparison.Ordinal));
        // The INT 13h reads happened before the window: their events are kept in the earlier section.
        Assert.Contains("# events before the first traced instruction:", lines);
        Assert.Contains(lines, line => line.EndsWith("-- int  vector 0x13", StringComparison.Ordinal));
        // "CHECKSUM xxxxxxxx\r\n" is 19 characters on COM1 after SeaBIOS's own text.
        string com1 = Assert.Single(lines, line => line.StartsWith("port 0x03F8 ", StringComparison.Ordinal));
        long writes = long.Parse(System.Text.RegularExpressions.Regex.Match(com1, @"out +(\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(writes >= 19, com1);
    }

    [Fact]
    public async Task No_trace_file_is_left_when_the_image_cannot_be_opened()
    {
        string trace = Path.Combine(_directory, "none.trace");

        var result = await Tools.Imgtool("boot", "-f", "raw", Path.Combine(_directory, "missing.img"), "--trace", trace);
        var depth = await Tools.Imgtool("boot", "-f", "raw", Path.Combine(_directory, "missing.img"), "--trace", trace, "--trace-depth", "0");

        Assert.Equal(1, result.ExitCode);
        Assert.Equal(1, depth.ExitCode);
        Assert.Contains("trace depth 0 is out of range", depth.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(trace));
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

    /// <summary>A bad pattern is explained in words, the same under NativeAOT (which has no exception message texts) as here.</summary>
    [Theory]
    [InlineData("(", "a '(' is never closed (at offset 1)")]
    [InlineData("a)", "a ')' has no '(' to close (at offset 2)")]
    [InlineData("[abc", "a '[' character class is never closed (at offset 4)")]
    [InlineData("*x", "a quantifier (*, +, ? or {n}) follows nothing (at offset 1)")]
    [InlineData("x\\", "the pattern ends in a lone backslash (at offset 2)")]
    public async Task A_bad_expect_pattern_is_explained_in_words(string expect, string explanation)
    {
        string image = Path.Combine(_directory, "zero.img");
        await File.WriteAllBytesAsync(image, new byte[1 << 20]);

        var result = await Tools.Imgtool("boot", "-f", "raw", image, "--expect", expect);

        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"imgtool: invalid --expect pattern '{expect}': {explanation}", result.Err.TrimEnd('\n'));
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

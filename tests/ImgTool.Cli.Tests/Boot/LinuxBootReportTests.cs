using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ImgTool.Cli.Tests.Boot;

/// <summary>
/// imgtool boot's verdict and report for a Linux-style run (issue 10 item 8), from hand-assembled boot
/// sectors: without --expect success is a login prompt on COM1; the report counts sectors read and written
/// and says why the run ended; a failure names the patterns that never appeared.
/// </summary>
public sealed class LinuxBootReportTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("imgtool-linux-report-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Without_expect_a_login_prompt_on_com1_is_success()
    {
        string image = await WriteImageAsync(PrintThenHalt("debian login: "));

        RunResult result = await Tools.Imgtool("boot", "-f", "raw", image, "--timeout", "120s", "--output", "json");

        Assert.True(result.ExitCode == 0, result.ToString());
        JsonElement report = JsonDocument.Parse(result.Out).RootElement;
        Assert.Equal("Success", report.GetProperty("outcome").GetString());
        Assert.Equal("PatternsMatched", report.GetProperty("end-reason").GetString());
        Assert.Empty(report.GetProperty("missing-patterns").EnumerateArray());
    }

    [Fact]
    public async Task Without_expect_a_guest_that_halts_before_a_login_prompt_fails_naming_it()
    {
        string image = await WriteImageAsync(PrintThenHalt("reboot: System halted"));

        RunResult json = await Tools.Imgtool("boot", "-f", "raw", image, "--timeout", "120s", "--output", "json");
        RunResult text = await Tools.Imgtool("boot", "-f", "raw", image, "--timeout", "120s");

        Assert.True(json.ExitCode == 1, json.ToString());
        JsonElement report = JsonDocument.Parse(json.Out).RootElement;
        Assert.Equal("HaltedInterruptsOff", report.GetProperty("outcome").GetString());
        Assert.Equal("HaltedInterruptsOff", report.GetProperty("end-reason").GetString());
        Assert.Equal(["login:"], report.GetProperty("missing-patterns").EnumerateArray().Select(pattern => pattern.GetString()));
        Assert.Equal(1, text.ExitCode);
        string[] lines = text.Out.Split('\n');
        Assert.StartsWith("boot failed: guest halted with interrupts off at 0000:", lines[0], StringComparison.Ordinal);
        Assert.Equal("expected on COM1 but not seen: 'login:'", lines[1]);
        Assert.Contains(lines, line => line.StartsWith("HaltedInterruptsOff: ", StringComparison.Ordinal)
            && line.EndsWith("; ended: the guest halted with interrupts off (power-off)", StringComparison.Ordinal));
    }

    /// <summary>Only the patterns that never appeared are named, in the order given.</summary>
    [Fact]
    public async Task A_failed_run_names_only_the_patterns_it_did_not_see()
    {
        string image = await WriteImageAsync(PrintThenHalt("marker seen"));

        RunResult result = await Tools.Imgtool("boot", "-f", "raw", image, "--expect", "marker seen", "--expect", "hash [0-9a-f]{64}",
            "--expect", "never", "--timeout", "120s", "--output", "json");

        Assert.True(result.ExitCode == 1, result.ToString());
        JsonElement report = JsonDocument.Parse(result.Out).RootElement;
        Assert.Equal(["hash [0-9a-f]{64}", "never"], report.GetProperty("missing-patterns").EnumerateArray().Select(pattern => pattern.GetString()));
    }

    /// <summary>
    /// The sector writes itself to sector 2 through INT 13h (SeaBIOS's virtio-blk driver): one sector written,
    /// counted by imgtool, into the copy-on-write overlay, so the image is unchanged.
    /// </summary>
    [Fact]
    public async Task The_report_counts_sectors_read_and_written_and_the_image_is_unchanged()
    {
        string image = await WriteImageAsync(WriteSectorThenPrint("debian login: "));
        byte[] before = SHA256.HashData(await File.ReadAllBytesAsync(image));

        RunResult result = await Tools.Imgtool("boot", "-f", "raw", image, "--timeout", "120s", "--output", "json");
        RunResult text = await Tools.Imgtool("boot", "-f", "raw", image, "--timeout", "120s");

        Assert.True(result.ExitCode == 0, result.ToString());
        JsonElement report = JsonDocument.Parse(result.Out).RootElement;
        Assert.Equal(1, report.GetProperty("sectors-written").GetInt64());
        Assert.True(report.GetProperty("sectors-read").GetInt64() >= 1, result.Out);
        Assert.True(report.GetProperty("instructions").GetInt64() > 0);
        Assert.True(report.GetProperty("virtual-seconds").GetDouble() > 0);
        Assert.True(report.GetProperty("wall-seconds").GetDouble() > 0);
        Assert.True(report.GetProperty("mips").GetDouble() > 0);
        Assert.Matches(@"^Success: \d+ instructions, [0-9.]+ MIPS, [0-9.]+ s virtual, [0-9.]+ s wall, \d+ sectors read, 1 written; ended: every expected pattern appeared\n$", text.Out);
        Assert.Equal(before, SHA256.HashData(await File.ReadAllBytesAsync(image)));
    }

    /// <summary>Where SeaBIOS loads the boot sector and jumps to it (0000:7C00).</summary>
    private const int BootSectorAddress = 0x7C00;

    /// <summary>Real-mode code that writes a NUL-terminated message to COM1, then halts for good.</summary>
    private static byte[] PrintThenHalt(string message) => [.. PrintLoop(BootSectorAddress), .. Encoding.ASCII.GetBytes(message), 0];

    /// <summary>As <see cref="PrintThenHalt"/>, after writing the boot sector to the disk's second sector.</summary>
    private static byte[] WriteSectorThenPrint(string message)
    {
        byte[] write =
        [
            0x31, 0xC0,       // xor ax, ax
            0x8E, 0xC0,       // mov es, ax
            0xB8, 0x01, 0x03, // mov ax, 0x0301 (INT 13h AH=03h: write AL=1 sector from ES:BX)
            0xBB, 0x00, 0x7C, // mov bx, 0x7C00
            0xB9, 0x02, 0x00, // mov cx, 0x0002 (cylinder 0, sector 2)
            0xBA, 0x80, 0x00, // mov dx, 0x0080 (head 0, the first hard disk)
            0xCD, 0x13,       // int 0x13
        ];
        return [.. write, .. PrintLoop(BootSectorAddress + write.Length), .. Encoding.ASCII.GetBytes(message), 0];
    }

    /// <summary>The print loop placed at <paramref name="address"/>; the message must follow it.</summary>
    private static byte[] PrintLoop(int address)
    {
        const int LoopBytes = 20;
        int text = address + LoopBytes;
        return
        [
            0x31, 0xC0,                          // xor ax, ax
            0x8E, 0xD8,                          // mov ds, ax
            0xBA, 0xF8, 0x03,                    // mov dx, 0x3F8 (COM1 data)
            0xBE, (byte)text, (byte)(text >> 8), // mov si, text
            0xAC,                                // next: lodsb
            0x84, 0xC0,                          // test al, al
            0x74, 0x03,                          // jz done
            0xEE,                                // out dx, al
            0xEB, 0xF8,                          // jmp next
            0xFA,                                // done: cli
            0xF4,                                // hlt
        ];
    }

    /// <summary>A 1 MiB disk whose boot sector is the code, zeros after it, and the 55 AA signature.</summary>
    private async Task<string> WriteImageAsync(byte[] code)
    {
        string image = Path.Combine(_directory, $"sector-{Guid.NewGuid():N}.img");
        var bytes = new byte[1 << 20];
        code.CopyTo(bytes, 0);
        bytes[510] = 0x55;
        bytes[511] = 0xAA;
        await File.WriteAllBytesAsync(image, bytes);
        return image;
    }
}

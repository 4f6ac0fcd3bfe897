using System.Diagnostics;
using System.Text.RegularExpressions;

namespace ImgTool.Cli.Tests.Boot;

/// <summary>
/// The SYSLINUX fixture (tools/fixtures/make-syslinux-disk.sh) boots to SYSLINUX's banner on COM1,
/// and SeaBIOS plus SYSLINUX print the same text as under qemu-system-i386 with the same firmware.
/// </summary>
public sealed partial class SyslinuxBootTests : IDisposable
{
    private const string Firmware = "/usr/share/seabios/bios.bin";
    private readonly string _directory = Directory.CreateTempSubdirectory("imgtool-syslinux-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Syslinux_fixture_boots_to_its_banner()
    {
        string image = await MakeFixtureAsync();

        var result = await Tools.Imgtool("boot", "-f", "raw", image, "--expect", "SYSLINUX", "--expect", "bootloader reached", "--timeout", "240s");

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    public static TheoryData<string, string[]> ConvertedFormats => new()
    {
        { "qcow2", ["-O", "qcow2"] },
        { "qcow2", ["-c", "-O", "qcow2"] },
        { "vmdk", ["-c", "-O", "vmdk", "-o", "subformat=streamOptimized"] },
        { "vpc", ["-O", "vpc"] },
        { "vhdx", ["-O", "vhdx"] },
    };

    /// <summary>The fixture converted to each format still boots: the point of boot-testing a converted image.</summary>
    [Theory]
    [MemberData(nameof(ConvertedFormats))]
    public async Task Converted_fixture_boots_in_every_format(string format, string[] convertArgs)
    {
        string image = await MakeFixtureAsync();
        string converted = Path.Combine(_directory, $"converted.{format}");
        RunResult convert = await Tools.Imgtool(["convert", "-f", "raw", .. convertArgs, image, converted]);
        Assert.True(convert.ExitCode == 0, convert.ToString());

        var result = await Tools.Imgtool("boot", "-f", format, converted, "--expect", "SYSLINUX", "--timeout", "240s");
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public async Task Serial_transcript_matches_qemu_system_i386()
    {
        string image = await MakeFixtureAsync();
        string ours = Path.Combine(_directory, "ours.log");
        var result = await Tools.Imgtool("boot", "-f", "raw", image, "--expect", "bootloader reached", "--timeout", "240s", "--serial-log", ours);
        Assert.True(result.ExitCode == 0, result.ToString());

        string theirs = Path.Combine(_directory, "qemu.log");

        // imgtool's machine offers etc/sercon-port = 0x3F8 so SeaBIOS mirrors its screen to COM1;
        // QEMU gets the same fw_cfg file (two bytes, little-endian) for a like-for-like transcript.
        string serconPort = Path.Combine(_directory, "sercon-port.bin");
        await File.WriteAllBytesAsync(serconPort, [0xF8, 0x03]);
        var start = new ProcessStartInfo("qemu-system-i386",
        [
            "-M", "pc", "-nodefaults", "-display", "none", "-bios", Firmware, "-m", "256",
            "-snapshot", "-drive", $"file={image},format=raw,if=none,id=d0",
            "-device", "virtio-blk-pci,drive=d0,disable-modern=on",
            "-serial", $"file:{theirs}", "-fw_cfg", $"name=etc/sercon-port,file={serconPort}", "-accel", "tcg",

            // Virtual time from the instruction count, as imgtool's machine keeps it (8 ns an instruction, close to
            // its 10): on the wall clock SeaBIOS's screen mirror wraps the 80-column banner line differently from one
            // QEMU run to the next ("et al" came out as "et a" in two runs of three), so the reference must not.
            "-icount", "shift=3,sleep=off",
        ])
        {
            RedirectStandardError = true, // QEMU warns that the fw_cfg name lacks the opt/ prefix
        };
        using (var qemu = Process.Start(start) ?? throw new InvalidOperationException("qemu-system-i386 did not start; tools/test.sh installs qemu-system-x86"))
        {
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (DateTime.UtcNow < deadline && !(File.Exists(theirs) && (await File.ReadAllTextAsync(theirs)).Contains("bootloader reached", StringComparison.Ordinal)))
            {
                await Task.Delay(200);
            }

            qemu.Kill();
            await qemu.WaitForExitAsync();
        }

        string expected = Normalize(await File.ReadAllTextAsync(theirs));
        string actual = Normalize(await File.ReadAllTextAsync(ours));
        Assert.Contains("bootloader reached", expected, StringComparison.Ordinal);
        Assert.Equal(expected, actual);
    }

    /// <summary>Drops escape sequences and carriage returns, and cuts after the fixture's line.</summary>
    private static string Normalize(string text)
    {
        text = Escape().Replace(text, "").Replace("\r", "", StringComparison.Ordinal);
        int end = text.IndexOf("bootloader reached", StringComparison.Ordinal);
        return end < 0 ? text : text[..(end + "bootloader reached".Length)];
    }

    private Task<string> MakeFixtureAsync() => MakeFixtureAsync(_directory);

    /// <summary>Builds the SYSLINUX fixture in a folder (tools/fixtures/make-syslinux-disk.sh).</summary>
    internal static async Task<string> MakeFixtureAsync(string folder)
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ImgTool.sln")))
        {
            directory = directory.Parent;
        }

        Assert.NotNull(directory);
        string image = Path.Combine(folder, "syslinux.img");
        var script = Path.Combine(directory.FullName, "tools", "fixtures", "make-syslinux-disk.sh");
        var result = await Tools.Qemu("bash", script, image);
        Assert.True(result.ExitCode == 0, "fixture script failed (needs syslinux, mtools, dosfstools, fdisk): " + result);
        return image;
    }

    [GeneratedRegex("\u001b(\\[[0-9;?]*[A-Za-z]|c)")]
    private static partial Regex Escape();
}

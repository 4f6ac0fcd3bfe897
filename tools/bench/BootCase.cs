using System.Globalization;
using System.Text.Json;

namespace ImgTool.Bench;

/// <summary>
/// The boot case: reset to SYSLINUX's banner on the SYSLINUX fixture (tools/fixtures/make-syslinux-disk.sh),
/// imgtool boot against qemu-system-i386 (TCG) with the same firmware, the same legacy virtio-blk disk and
/// the same fw_cfg file etc/sercon-port, so that both print the same transcript and stop at the same byte.
/// </summary>
internal static class BootCase
{
    public const string Expected = "SYSLINUX";
    public const string QemuSystemName = "qemu-system-i386";
    private const string FirmwarePath = "/usr/share/seabios/bios.bin";
    private const int TimeoutSeconds = 120;

    public static BenchCase Create() => new()
    {
        Id = "boot",
        Name = "boot to SYSLINUX banner",
        PeerName = QemuSystemName,
        UsesTestImages = false,
        ImgtoolArgs =
        [
            "boot", "-f", "raw", "{WORK}/syslinux.img", "--expect", Expected,
            "--timeout", $"{TimeoutSeconds}s", "--output", "json",
        ],
        // run-until.sh stops qemu as soon as the text appears on COM1 (qemu's stdout), as --expect does.
        PeerProgram = context => context.BashPath,
        QemuImgArgs =
        [
            "{TOOLS}/run-until.sh", Expected, $"{TimeoutSeconds}", "{QEMU_SYSTEM}",
            "-M", "pc", "-nodefaults", "-accel", "tcg", "-display", "none", "-m", "256",
            "-bios", FirmwarePath,
            "-device", "virtio-blk-pci,disable-modern=on,drive=d",
            "-drive", "if=none,id=d,file={WORK}/syslinux.img,format=raw,snapshot=on",
            "-serial", "stdio",
            // imgtool's machine offers etc/sercon-port = 0x3F8, so SeaBIOS mirrors its screen to COM1
            // and the banner reaches COM1 through INT 10h. Without it qemu's first "SYSLINUX" comes
            // later, after SYSLINUX has read its configuration. QEMU warns about the missing opt/ prefix.
            "-fw_cfg", "name=etc/sercon-port,file={WORK}/sercon-port.bin",
        ],
        Prepare = Prepare,
        ReadImgtoolOutput = SummarizeRuns,
    };

    private static void Prepare(BenchContext context)
    {
        if (!File.Exists(FirmwarePath))
        {
            throw new BenchException($"{FirmwarePath} is missing: tools/bench/run.sh installs Debian's 'seabios'");
        }

        string image = Path.Combine(context.Paths.WorkDir, "syslinux.img");
        File.Delete(image);
        Runner.RunChecked(context.BashPath, Path.Combine(context.ToolsDir, "make-syslinux-disk.sh"), image);
        File.WriteAllBytes(Path.Combine(context.Paths.WorkDir, "sercon-port.bin"), [0xF8, 0x03]);
    }

    /// <summary>
    /// The machine's speed from imgtool boot's JSON summary: instructions from reset to the banner and
    /// MIPS over that run (the machine's own wall time, without process start). Virtual time is derived
    /// from the instruction count, so every run must retire the same number of instructions.
    /// </summary>
    private static IReadOnlyList<CaseNote> SummarizeRuns(IReadOnlyList<Measurement> runs)
    {
        var summaries = runs.Select(run => BootSummary.Parse(run.Stdout)).ToArray();
        var notes = new List<CaseNote>();
        if (summaries.Any(summary => !summary.Success))
        {
            notes.Add(new CaseNote(true, "an imgtool boot run did not report success"));
        }

        long[] counts = summaries.Select(summary => summary.Instructions).Distinct().ToArray();
        if (counts.Length != 1)
        {
            notes.Add(new CaseNote(true, $"instruction counts differ between runs ({string.Join(", ", counts)}): the machine is not deterministic"));
        }

        double[] mips = summaries.Select(summary => summary.Mips).Order().ToArray();
        double median = mips.Length % 2 == 1 ? mips[mips.Length / 2] : (mips[mips.Length / 2 - 1] + mips[mips.Length / 2]) / 2;
        BootSummary first = summaries[0];
        notes.Add(new CaseNote(false, string.Create(CultureInfo.InvariantCulture,
            $"imgtool machine: {median:F1} MIPS median (runs {mips[0]:F1}..{mips[^1]:F1}) over {first.Instructions} instructions " +
            $"from reset to the banner, {first.VirtualSeconds:F3} s virtual, {first.SectorsRead} sectors read")));
        return notes;
    }

    private sealed record BootSummary(bool Success, long Instructions, double Mips, double VirtualSeconds, long SectorsRead)
    {
        public static BootSummary Parse(string json)
        {
            try
            {
                using JsonDocument document = JsonDocument.Parse(json);
                JsonElement root = document.RootElement;
                return new BootSummary(
                    root.GetProperty("success").GetBoolean(),
                    root.GetProperty("instructions").GetInt64(),
                    root.GetProperty("mips").GetDouble(),
                    root.GetProperty("virtual-seconds").GetDouble(),
                    root.GetProperty("sectors-read").GetInt64());
            }
            catch (Exception exception) when (exception is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new BenchException($"cannot read imgtool boot's JSON summary ({exception.Message}):{Runner.Indent("stdout", json)}");
            }
        }
    }
}

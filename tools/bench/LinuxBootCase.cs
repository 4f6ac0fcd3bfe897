using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ImgTool.Bench;

/// <summary>
/// The Linux boot cases: the Linux fixture (tools/fixtures/make-linux-disk.sh, SYSLINUX variant) from reset to
/// user space (<c>boot-linux</c>: the init's marker line) and on to the guest's hashes of its own disk
/// (<c>boot-linux-hashes</c>: the line after them), imgtool boot against qemu-system-i386 (TCG) with the same
/// SeaBIOS and the same disk, stopped by run-until.sh when the same line appears on its COM1.
/// </summary>
/// <remarks>
/// QEMU gets a machine like imgtool's, as in LinuxQemuInteropTests: a family-6 CPU without a local APIC
/// (pentium2,-apic) and no ACPI tables. imgtool's runs may fail (the CPU engine of issue 10 is not done): the
/// case then reports the machine's diagnosis as a problem rather than stopping the bench, and still times QEMU.
/// </remarks>
internal sealed class LinuxBootCase
{
    public const string Prefix = "ImgTool Linux fixture: ";
    public const string Marker = Prefix + "user space reached";

    /// <summary>The init's last line, printed right after the two hash lines.</summary>
    public const string Done = Prefix + "done";

    private const string FirmwarePath = "/usr/share/seabios/bios.bin";
    private const string ImageName = "linux-syslinux.img";
    private const int QemuTimeoutSeconds = 300;

    /// <summary>A Linux boot is billions of instructions: far more than the SYSLINUX case's limit.</summary>
    private const int ImgtoolTimeoutSeconds = 900;

    /// <summary>The MBR partition table: a 16-byte entry per partition from byte 446; partition 2 is the data.</summary>
    private const int PartitionTableOffset = 446;
    private const int PartitionEntryBytes = 16;
    private const int PartitionStartLbaOffset = 8;
    private const int PartitionSectorCountOffset = PartitionStartLbaOffset + 4;
    private const int DataPartitionIndex = 1;
    private const int SectorBytes = 512;

    private readonly string _stopText;
    private (string Disk, string Data)? _expectedHashes;

    private LinuxBootCase(string stopText) => _stopText = stopText;

    public static BenchCase ToMarker() => new LinuxBootCase(Marker).Create("boot-linux", "boot Linux to user space");

    public static BenchCase ToHashes() => new LinuxBootCase(Done).Create("boot-linux-hashes", "boot Linux, guest hashes its disk");

    private BenchCase Create(string id, string name) => new()
    {
        Id = id,
        Name = name,
        PeerName = BootCase.QemuSystemName,
        UsesTestImages = false,
        ImgtoolMayFail = true,
        ImgtoolArgs =
        [
            "boot", "-f", "raw", $"{{WORK}}/{ImageName}", "--expect", _stopText,
            "--timeout", $"{ImgtoolTimeoutSeconds}s", "--output", "json",
        ],
        PeerProgram = context => context.BashPath,
        QemuImgArgs =
        [
            "{TOOLS}/run-until.sh", _stopText, $"{QemuTimeoutSeconds}", "{QEMU_SYSTEM}",
            "-M", "pc,acpi=off", "-cpu", "pentium2,-apic", "-nodefaults", "-accel", "tcg", "-display", "none", "-m", "256",
            "-bios", FirmwarePath,
            "-device", "virtio-blk-pci,disable-modern=on,drive=d",
            "-drive", $"if=none,id=d,file={{WORK}}/{ImageName},format=raw,snapshot=on",
            "-serial", "stdio",
        ],
        Prepare = Prepare,
        ReadImgtoolOutput = SummarizeRuns,
    };

    /// <summary>Builds the fixture into the work folder unless the one there came from the same script and files.</summary>
    private void Prepare(BenchContext context)
    {
        if (!File.Exists(FirmwarePath))
        {
            throw new BenchException($"{FirmwarePath} is missing: tools/bench/run.sh installs Debian's 'seabios'");
        }

        string script = Path.Combine(context.ToolsDir, "make-linux-disk.sh");
        string image = Path.Combine(context.Paths.WorkDir, ImageName);
        string marker = image + ".script-sha256";
        string scriptHash = ScriptHash(script, Path.Combine(context.ToolsDir, "linux"));
        if (!File.Exists(image) || !File.Exists(marker) || File.ReadAllText(marker) != scriptHash)
        {
            File.Delete(marker);
            Runner.RunChecked(context.BashPath, script, image, "--bootloader", "syslinux");
            File.WriteAllText(marker, scriptHash);
        }

        _expectedHashes = Hashes(image);
    }

    /// <summary>
    /// The machine's speed from imgtool boot's JSON summary, or, while the machine cannot boot Linux, its
    /// diagnosis as a problem; for the hashes case, whether the guest printed the hashes of the image.
    /// </summary>
    private IReadOnlyList<CaseNote> SummarizeRuns(IReadOnlyList<Measurement> runs)
    {
        var notes = new List<CaseNote>();
        var summaries = new List<Summary>();
        foreach (Measurement run in runs)
        {
            if (Summary.TryParse(run.Stdout) is { } summary)
            {
                summaries.Add(summary);
            }
            else
            {
                notes.Add(new CaseNote(true, $"imgtool boot exited with {run.ExitCode} without a JSON summary:" +
                    Runner.Indent("stdout", run.Stdout) + Runner.Indent("stderr", run.Stderr)));
            }
        }

        Summary[] failed = summaries.Where(summary => !summary.Success).ToArray();
        if (failed.Length > 0)
        {
            Summary first = failed[0];
            notes.Add(new CaseNote(true, string.Create(CultureInfo.InvariantCulture,
                $"imgtool's machine did not reach '{_stopText}' in {failed.Length} of {runs.Count} runs, so its times are those of a " +
                $"failed run, not of a boot: {first.Outcome}: {first.Diagnosis} (after {first.Instructions} instructions, " +
                $"{first.VirtualSeconds:F3} s virtual, {first.Mips:F1} MIPS); last line on COM1: '{LastLine(first.Serial)}'")));
        }

        Summary[] succeeded = summaries.Where(summary => summary.Success).ToArray();
        if (succeeded.Length == 0)
        {
            return notes;
        }

        long[] counts = succeeded.Select(summary => summary.Instructions).Distinct().ToArray();
        if (counts.Length != 1)
        {
            notes.Add(new CaseNote(true, $"instruction counts differ between runs ({string.Join(", ", counts)}): the machine is not deterministic"));
        }

        double[] mips = succeeded.Select(summary => summary.Mips).Order().ToArray();
        double median = mips.Length % 2 == 1 ? mips[mips.Length / 2] : (mips[mips.Length / 2 - 1] + mips[mips.Length / 2]) / 2;
        Summary firstGood = succeeded[0];
        notes.Add(new CaseNote(false, string.Create(CultureInfo.InvariantCulture,
            $"imgtool machine: {median:F1} MIPS median (runs {mips[0]:F1}..{mips[^1]:F1}) over {firstGood.Instructions} instructions " +
            $"from reset to '{_stopText}', {firstGood.VirtualSeconds:F3} s virtual, {firstGood.SectorsRead} sectors read")));

        if (_stopText == Done && _expectedHashes is { } expected)
        {
            string? disk = PrintedHash(firstGood.Serial, "/dev/vda");
            string? data = PrintedHash(firstGood.Serial, "/dev/vda2");
            bool match = disk == expected.Disk && data == expected.Data;
            notes.Add(new CaseNote(!match, match
                ? "the guest printed the SHA-256 of the whole disk and of the data partition that the bench computed from the image"
                : $"the guest's hashes differ from the image's: /dev/vda {disk ?? "missing"} (expected {expected.Disk}), /dev/vda2 {data ?? "missing"} (expected {expected.Data})"));
        }

        return notes;
    }

    private static string? PrintedHash(string serial, string device) =>
        Regex.Match(serial, $"{Regex.Escape(Prefix)}sha256 {Regex.Escape(device)} ([0-9a-f]{{64}})") is { Success: true } match ? match.Groups[1].Value : null;

    private static string LastLine(string serial) =>
        serial.Replace("\r", "", StringComparison.Ordinal).Split('\n').LastOrDefault(line => line.Trim().Length > 0)?.Trim() ?? "";

    /// <summary>SHA-256 of the whole image and of partition 2, found through the image's MBR.</summary>
    private static (string Disk, string Data) Hashes(string image)
    {
        using var stream = File.OpenRead(image);
        byte[] mbr = new byte[SectorBytes];
        stream.ReadExactly(mbr);
        ReadOnlySpan<byte> entry = mbr.AsSpan(PartitionTableOffset + DataPartitionIndex * PartitionEntryBytes, PartitionEntryBytes);
        long offset = BinaryPrimitives.ReadUInt32LittleEndian(entry[PartitionStartLbaOffset..]) * (long)SectorBytes;
        long length = BinaryPrimitives.ReadUInt32LittleEndian(entry[PartitionSectorCountOffset..]) * (long)SectorBytes;
        if (length == 0 || offset + length > stream.Length)
        {
            throw new BenchException($"{image}: partition 2 is missing or outside the disk");
        }

        stream.Position = 0;
        string disk = Convert.ToHexStringLower(SHA256.HashData(stream));
        byte[] data = new byte[length];
        stream.Position = offset;
        stream.ReadExactly(data);
        return (disk, Convert.ToHexStringLower(SHA256.HashData(data)));
    }

    /// <summary>SHA-256 over the script and the files it reads (tools/fixtures/linux/): a change rebuilds the fixture.</summary>
    private static string ScriptHash(string script, string filesDir)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        IEnumerable<string> files = Directory.Exists(filesDir)
            ? Directory.EnumerateFiles(filesDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            : [];
        foreach (string file in files.Prepend(script))
        {
            hash.AppendData(File.ReadAllBytes(file));
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private sealed record Summary(bool Success, string Outcome, string Diagnosis, long Instructions, double Mips, double VirtualSeconds, long SectorsRead, string Serial)
    {
        public static Summary? TryParse(string json)
        {
            try
            {
                using JsonDocument document = JsonDocument.Parse(json);
                JsonElement root = document.RootElement;
                return new Summary(
                    root.GetProperty("success").GetBoolean(),
                    root.GetProperty("outcome").GetString() ?? "",
                    root.GetProperty("diagnosis").GetString() ?? "",
                    root.GetProperty("instructions").GetInt64(),
                    root.GetProperty("mips").GetDouble(),
                    root.GetProperty("virtual-seconds").GetDouble(),
                    root.GetProperty("sectors-read").GetInt64(),
                    root.GetProperty("serial").GetString() ?? "");
            }
            catch (Exception exception) when (exception is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                return null;
            }
        }
    }
}

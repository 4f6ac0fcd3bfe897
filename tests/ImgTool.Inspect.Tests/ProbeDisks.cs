using System.Globalization;

namespace ImgTool.Inspect.Tests;

/// <summary>One file system the probe tests make with Debian's own tool: its partition size and the shell command
/// that makes it in the file "$F".</summary>
public sealed record FsCase(string Name, int SizeMiB, string Make);

/// <summary>Disks built once for the probe tests with sgdisk/sfdisk and the mkfs tools, each also converted to qcow2
/// and vmdk by qemu-img: a GPT disk with one partition per file system kind, and an MBR disk with an extended
/// partition holding logical ones.</summary>
public sealed class ProbeDisks : IDisposable
{
    public static readonly FsCase[] GptCases =
    [
        new("ext2", 32, "mke2fs -q -t ext2 -L e2lab $F"),
        new("ext3", 32, "mke2fs -q -t ext3 -L e3lab $F"),
        new("ext4", 32, "mke2fs -q -t ext4 -L e4lab $F"),
        new("ext4-nojournal", 32, "mke2fs -q -t ext4 -O ^has_journal $F"),
        new("ext4-64bit-csum-inline", 32, "mke2fs -q -t ext4 -O 64bit,metadata_csum,inline_data -L e4x $F"),
        new("xfs", 300, "mkfs.xfs -q -L xlab $F"),
        new("btrfs", 128, "mkfs.btrfs -q -L blab $F"),
        new("fat12", 8, "mkfs.vfat -F 12 -n F12LAB $F"),
        new("fat16", 32, "mkfs.vfat -F 16 -n F16LAB $F"),
        new("fat32", 64, "mkfs.vfat -F 32 -n F32LAB $F"),
        new("fat16-nolabel", 16, "mkfs.vfat -F 16 $F"),
        new("exfat", 16, "mkfs.exfat -L exlab $F"),
        new("ntfs", 16, "mkntfs -q -F -Q -L ntlab $F"),
        new("swap", 16, "mkswap -L swlab $F"),
        new("luks1", 16, "printf pw | cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 $F -"),
        new("luks2", 32, "printf pw | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --label l2lab $F -"),
        new("iso9660", 4, "mkdir -p $F.d && echo hi > $F.d/a.txt && genisoimage -quiet -V ISOLAB -o $F.iso $F.d && mv $F.iso $F && truncate -s 4M $F"),
    ];

    public static readonly FsCase[] MbrCases =
    [
        new("ext4", 32, "mke2fs -q -t ext4 -L boot $F"),
        new("fat32", 64, "mkfs.vfat -F 32 -n DATA $F"),
        new("ext2", 16, "mke2fs -q -t ext2 -L logical5 $F"),
        new("swap", 8, "mkswap -L logical6 $F"),
        new("exfat", 16, "mkfs.exfat -L logical7 $F"),
    ];

    private readonly TempDir dir = new();

    public ProbeDisks()
    {
        Gpt = Path.Combine(dir.Path, "gpt.img");
        Mbr = Path.Combine(dir.Path, "mbr.img");
        BuildGpt().GetAwaiter().GetResult();
        BuildMbr().GetAwaiter().GetResult();
        foreach (string disk in new[] { Gpt, Mbr })
        {
            foreach (string format in new[] { "qcow2", "vmdk", "vdi", "vhdx" })
            {
                HostTools.Run("qemu-img", "convert", "-f", "raw", "-O", format, disk, Path.ChangeExtension(disk, format)).GetAwaiter().GetResult();
            }
        }
    }

    public string Gpt { get; }

    public string Mbr { get; }

    public string Folder => dir.Path;

    public static string Converted(string raw, string format) => format == "raw" ? raw : Path.ChangeExtension(raw, format);

    public void Dispose() => dir.Dispose();

    private async Task<string> MakeFilesystem(FsCase fs, int index)
    {
        string file = Path.Combine(dir.Path, $"part{index}-{fs.Name}.fs");
        await HostTools.Run("truncate", "-s", $"{fs.SizeMiB}M", file);
        await HostTools.Shell($"F='{file}'; {fs.Make} >/dev/null 2>&1 || {{ {fs.Make}; exit 1; }}");
        return file;
    }

    private async Task BuildGpt()
    {
        long totalMiB = GptCases.Sum(c => c.SizeMiB) + 2;
        await HostTools.Run("truncate", "-s", $"{totalMiB}M", Gpt);
        var args = new List<string> { "-a", "2048" };
        for (int i = 0; i < GptCases.Length; i++)
        {
            int n = i + 1;
            args.AddRange([$"-n{n}:0:+{GptCases[i].SizeMiB}M", $"-c{n}:part-{GptCases[i].Name}", $"-t{n}:{(GptCases[i].Name.StartsWith("fat", StringComparison.Ordinal) ? "0700" : "8300")}"]);
        }

        args.Add(Gpt);
        await HostTools.Run("sgdisk", [.. args]);
        RunResult dump = await HostTools.Run("sfdisk", "--dump", Gpt);
        List<long> starts = Starts(dump.Out);
        for (int i = 0; i < GptCases.Length; i++)
        {
            HostTools.CopyInto(await MakeFilesystem(GptCases[i], i + 1), Gpt, starts[i] * 512);
        }
    }

    private async Task BuildMbr()
    {
        await HostTools.Run("truncate", "-s", "160M", Mbr);
        string script = "label: dos\nlabel-id: 0x1badcafe\n2048,32M,83,*\n,64M,c\n,,5\n,16M,83\n,8M,82\n,16M,7\n";
        await HostTools.Shell($"printf '{script.Replace("\n", "\\n", StringComparison.Ordinal)}' | sfdisk -q '{Mbr}'");
        RunResult dump = await HostTools.Run("sfdisk", "--dump", Mbr);
        List<long> starts = Starts(dump.Out);
        // sfdisk --dump lists 1, 2, 3 (extended), 5, 6, 7.
        long[] targets = [starts[0], starts[1], starts[3], starts[4], starts[5]];
        for (int i = 0; i < MbrCases.Length; i++)
        {
            HostTools.CopyInto(await MakeFilesystem(MbrCases[i], i + 1), Mbr, targets[i] * 512);
        }
    }

    private static List<long> Starts(string dump) =>
        dump.Split('\n')
            .Where(l => l.Contains("start=", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split("start=")[1].Split(',')[0].Trim(), CultureInfo.InvariantCulture))
            .ToList();
}

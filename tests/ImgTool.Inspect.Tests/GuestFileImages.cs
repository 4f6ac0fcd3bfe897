namespace ImgTool.Inspect.Tests;

/// <summary>File systems filled by the tests' own tools from one source tree: ext2/3/4 with `mke2fs -d` (then
/// `e2fsck -fD`, which turns the large directory into an htree), and FAT12/16/32 with `mcopy`. The tree has long and
/// non-ASCII names, a deep directory chain, a directory of 400 entries, fast and slow symlinks, small files (inline data
/// where the feature is on) and, on ext and FAT32, a 101 MiB file with holes.</summary>
public sealed class GuestFileImages : IDisposable
{
    public const string DeepDirectory = "/deep/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12";
    public const int BigDirectoryEntries = 400;

    /// <summary>(name, mke2fs options, partition size MiB).</summary>
    public static readonly (string Name, string Options, int SizeMiB)[] ExtCases =
    [
        ("ext2", "-t ext2 -b 1024", 256),   // 1 KiB blocks: the 101 MiB file needs the triple-indirect block
        ("ext3", "-t ext3", 256),
        ("ext4", "-t ext4", 256),
        ("ext4-inline", "-t ext4 -O inline_data,metadata_csum,64bit -I 256", 256),
    ];

    /// <summary>(name, mkfs.vfat FAT size, image size MiB, include the 101 MiB file).</summary>
    public static readonly (string Name, int Fat, int SizeMiB, bool Big)[] FatCases =
    [
        ("fat12", 12, 8, false),
        ("fat16", 16, 64, false),
        ("fat32", 32, 300, true),
    ];

    private readonly TempDir dir = new();

    public GuestFileImages()
    {
        Source = Path.Combine(dir.Path, "src");
        FatSource = Path.Combine(dir.Path, "fatsrc");
        BuildSource();
        foreach (var (name, options, size) in ExtCases)
        {
            string image = Image(name);
            HostTools.Run("truncate", "-s", $"{size}M", image).GetAwaiter().GetResult();
            HostTools.Shell($"mke2fs -q {options} -d '{Source}' '{image}' && e2fsck -fyD '{image}' >/dev/null 2>&1; e2fsck -fn '{image}' >/dev/null").GetAwaiter().GetResult();
        }

        foreach (var (name, fat, size, big) in FatCases)
        {
            string image = Image(name);
            HostTools.Run("truncate", "-s", $"{size}M", image).GetAwaiter().GetResult();
            HostTools.Shell($"mkfs.vfat -F {fat} -n {name.ToUpperInvariant()} '{image}' >/dev/null && cd '{FatSource}' && MTOOLS_SKIP_CHECK=1 mcopy -s -m -i '{image}' * ::/"
                + (big ? $" && MTOOLS_SKIP_CHECK=1 mcopy -m -i '{image}' '{Source}/sparse.bin' ::/" : string.Empty)).GetAwaiter().GetResult();
        }

        // A partitioned disk holding the ext4 and FAT32 file systems, converted to qcow2, for IMAGE:N:/PATH.
        Disk = Path.Combine(dir.Path, "disk.img");
        HostTools.Run("truncate", "-s", "600M", Disk).GetAwaiter().GetResult();
        HostTools.Shell($"printf 'label: dos\\n2048,300M,c,*\\n,,83\\n' | sfdisk -q '{Disk}'").GetAwaiter().GetResult();
        HostTools.CopyInto(Image("fat32"), Disk, 2048 * 512);
        HostTools.CopyInto(Image("ext4"), Disk, (2048 + (300 * 2048)) * 512L);
        HostTools.Run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", Disk, Path.ChangeExtension(Disk, "qcow2")).GetAwaiter().GetResult();
    }

    public string Source { get; }

    public string FatSource { get; }

    public string Disk { get; }

    public string Folder => dir.Path;

    public string Image(string name) => Path.Combine(dir.Path, name + ".img");

    public void Dispose() => dir.Dispose();

    private void BuildSource()
    {
        foreach (string root in new[] { Source, FatSource })
        {
            Directory.CreateDirectory(root + DeepDirectory);
            File.WriteAllText(Path.Combine(root + DeepDirectory, "leaf.txt"), "at the bottom\n");
            File.WriteAllText(Path.Combine(root, "hello.txt"), "hello, world\n");
            File.WriteAllText(Path.Combine(root, "Long File Name With Spaces.txt"), "long name\n");
            File.WriteAllText(Path.Combine(root, "naïve café.txt"), "unicode\n");
            File.WriteAllBytes(Path.Combine(root, "empty"), []);
            byte[] random = new byte[3 << 20];
            new Random(16).NextBytes(random);
            File.WriteAllBytes(Path.Combine(root, "random.bin"), random);
            Directory.CreateDirectory(Path.Combine(root, "big"));
            for (int i = 0; i < BigDirectoryEntries; i++)
            {
                File.WriteAllText(Path.Combine(root, "big", $"entry number {i:D4} with a long name.txt"), $"{i}\n");
            }
        }

        // ext only: a small file (inline where inline_data is on), symlinks, and the large file with holes.
        File.WriteAllText(Path.Combine(Source, "tiny"), "tiny file\n");
        File.CreateSymbolicLink(Path.Combine(Source, "fast-link"), "hello.txt");
        File.CreateSymbolicLink(Path.Combine(Source, "slow-link"), string.Concat(Enumerable.Repeat("long-component/", 8)) + "target");
        File.CreateSymbolicLink(Path.Combine(Source, "dir-link"), "deep/d1");
        using (var sparse = new FileStream(Path.Combine(Source, "sparse.bin"), FileMode.Create))
        {
            sparse.SetLength((101L << 20) + 12345);
            byte[] data = new byte[70000];
            new Random(7).NextBytes(data);
            foreach (long at in new[] { 0L, 5L << 20, 50L << 20, (101L << 20) + 12345 - data.Length })
            {
                sparse.Position = at;
                sparse.Write(data);
            }
        }
    }
}

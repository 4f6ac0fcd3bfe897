using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Inspect.Disk;
using ImgTool.Inspect.Files;
using ImgTool.Inspect.Inspection;

namespace ImgTool.Inspect.Tests;

/// <summary>Damaged and hostile file systems and tables: a clear one-line error and a non-zero exit, never a hang, a
/// crash or a read outside the disk; the image is never changed; copy-out leaves nothing behind.</summary>
public sealed class HostileFilesystemTests
{
    [Fact]
    public async Task Ext_directory_loop_fails_copy_out_with_a_clear_error_and_leaves_nothing()
    {
        using var dir = new TempDir();
        string image = await ExtImage(dir, "-t ext4");
        await HostTools.Run("debugfs", "-w", "-R", "link /a /a/b/loop", image);
        byte[] before = File.ReadAllBytes(image);
        RunResult ls = await HostTools.Imgtool("ls", $"{image}:/a/b/loop/b/loop/b");
        Assert.True(ls.ExitCode == 0, ls.ToString()); // a finite path through the loop is fine
        string destination = dir.File("out");
        RunResult copy = await HostTools.Imgtool("copy-out", $"{image}:/", destination);
        Assert.Equal(1, copy.ExitCode);
        Assert.Contains("directory loop", copy.Err, StringComparison.Ordinal);
        Assert.Single(copy.Err.Trim().Split('\n'));
        Assert.False(Directory.Exists(destination));
        Assert.DoesNotContain(Directory.GetFileSystemEntries(dir.Path), p => Path.GetFileName(p).StartsWith(".out", StringComparison.Ordinal));
        Assert.Equal(before, File.ReadAllBytes(image));
    }

    [Theory]
    [InlineData("-t ext4", "block[5]")]   // extent leaf: ee_start_lo
    [InlineData("-t ext2", "block[0]")]   // block map: the first direct block
    public async Task Blocks_past_the_end_of_the_file_system_are_an_error(string options, string field)
    {
        using var dir = new TempDir();
        string image = await ExtImage(dir, options);
        await HostTools.Run("debugfs", "-w", "-R", $"sif /a/data.bin {field} 0x7ffffff0", image);
        RunResult cat = await HostTools.Imgtool("cat", $"{image}:/a/data.bin");
        Assert.Equal(1, cat.ExitCode);
        Assert.Contains("past the end of the file system", cat.Err, StringComparison.Ordinal);
        Assert.Empty(cat.Bytes);
    }

    [Fact]
    public async Task Inode_number_out_of_range_is_an_error()
    {
        using var dir = new TempDir();
        string image = await ExtImage(dir, "-t ext4");
        PatchDirectoryEntryInode(image, "data.bin", 0x7FFFFFFF);
        RunResult ls = await HostTools.Imgtool("ls", "-l", $"{image}:/a");
        Assert.Equal(1, ls.ExitCode);
        Assert.Contains("inode number 2147483647 is out of range", ls.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fat_chain_loop_is_an_error_not_a_hang()
    {
        using var dir = new TempDir();
        string image = dir.File("fat.img");
        await HostTools.Run("truncate", "-s", "16M", image);
        await HostTools.Run("mkfs.vfat", "-F", "16", "-s", "1", image);
        File.WriteAllBytes(dir.File("loop.txt"), new byte[5000]);
        await HostTools.Run("mcopy", "-i", image, dir.File("loop.txt"), "::/LOOP.TXT");
        MakeFatChainLoop(image, "LOOP    TXT");
        var cat = HostTools.Imgtool("cat", $"{image}:/LOOP.TXT");
        RunResult result = await cat.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("cluster chain loops", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Looping_chain_of_extended_boot_records_is_a_warning()
    {
        byte[] disk = new byte[8 << 20];
        WriteMbrEntry(disk, 0, 0, type: 0x05, start: 2048, count: 8192);
        // The EBR: one logical partition, and a link back to itself.
        WriteMbrEntry(disk, 2048 * 512, 0, type: 0x83, start: 63, count: 100);
        WriteMbrEntry(disk, 2048 * 512, 1, type: 0x05, start: 0, count: 8192);
        var inspected = await DiskInspector.VolumesAsync(new DiskView(new MemoryDevice(disk), "loop.img"), CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains(inspected.Table!.Warnings!, w => w.Contains("loops", StringComparison.Ordinal));
        Assert.Equal([1, 5], inspected.Volumes.Select(v => v.Partition!.Number));
    }

    [Fact]
    public async Task Gpt_with_an_absurd_entry_array_is_reported_not_allocated()
    {
        byte[] disk = new byte[4 << 20];
        WriteMbrEntry(disk, 0, 0, type: 0xEE, start: 1, count: (disk.Length / 512) - 1);
        Span<byte> h = disk.AsSpan(512, 92);
        "EFI PART"u8.CopyTo(h);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], 0x00010000);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], 92);
        BinaryPrimitives.WriteInt64LittleEndian(h[24..], 1);
        BinaryPrimitives.WriteInt64LittleEndian(h[72..], 2);
        BinaryPrimitives.WriteUInt32LittleEndian(h[80..], uint.MaxValue);
        BinaryPrimitives.WriteUInt32LittleEndian(h[84..], 128);
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], Crc32.Compute(h));
        var inspected = await DiskInspector.VolumesAsync(new DiskView(new MemoryDevice(disk), "huge.img"), CancellationToken.None);
        Assert.Equal("gpt", inspected.Table!.Label);
        Assert.Contains("out of range", inspected.Table.Primary!.Problem, StringComparison.Ordinal);
        Assert.Empty(inspected.Volumes);
    }

    /// <summary>Random byte damage to real ext4, ext2 and FAT images: walking every directory and reading every file
    /// either works or ends in an <see cref="ImgToolException"/>, within a time limit, and never reads outside the disk.</summary>
    [Theory]
    [InlineData("ext4")]
    [InlineData("ext2")]
    [InlineData("fat16")]
    public async Task Random_damage_gives_errors_never_crashes_or_hangs(string kind)
    {
        using var dir = new TempDir();
        string image = kind.StartsWith("ext", StringComparison.Ordinal) ? await ExtImage(dir, $"-t {kind} -b 1024") : await FatImage(dir);
        byte[] pristine = File.ReadAllBytes(image);
        int metadataEnd = Math.Min(pristine.Length, 600 * 1024); // superblocks, group tables, inode tables, FATs, root dirs
        var random = new Random(1600);
        for (int round = 0; round < 60; round++)
        {
            byte[] damaged = (byte[])pristine.Clone();
            for (int i = 0; i < 40; i++)
            {
                damaged[1024 + random.Next(metadataEnd - 1024)] = (byte)random.Next(256);
            }

            await WalkEverythingAsync(damaged).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    private static async ValueTask WalkEverythingAsync(byte[] content)
    {
        var disk = new DiskView(new MemoryDevice(content), "damaged.img");
        try
        {
            var (_, volumes) = await DiskInspector.VolumesAsync(disk, CancellationToken.None);
            if (!GuestFileSystems.CanRead(volumes[0].Filesystem))
            {
                return;
            }

            IGuestFileSystem fs = await GuestFileSystems.OpenAsync(disk, volumes[0].Filesystem, CancellationToken.None);
            var pending = new Queue<(GuestEntry Entry, int Depth)>([(fs.Root, 0)]);
            var seen = new HashSet<long>();
            byte[] buffer = new byte[1 << 16];
            while (pending.Count > 0)
            {
                var (entry, depth) = pending.Dequeue();
                if (!seen.Add(entry.Id) || depth > 32)
                {
                    continue;
                }

                try
                {
                    foreach (GuestEntry child in await fs.ListAsync(entry, CancellationToken.None))
                    {
                        if (child.Kind == GuestFileKind.Directory)
                        {
                            pending.Enqueue((child, depth + 1));
                        }
                        else if (child.Kind == GuestFileKind.File)
                        {
                            await ReadAllAsync(fs, child, buffer);
                        }
                        else if (child.Kind == GuestFileKind.Symlink)
                        {
                            await IgnoreErrors(fs.ReadLinkAsync(child, CancellationToken.None).AsTask());
                        }
                    }
                }
                catch (ImgToolException)
                {
                }
            }
        }
        catch (ImgToolException)
        {
        }
    }

    private static async Task ReadAllAsync(IGuestFileSystem fs, GuestEntry file, byte[] buffer)
    {
        try
        {
            // A damaged size may claim terabytes: read the first and the last pieces only.
            await fs.ReadAsync(file, 0, buffer, CancellationToken.None);
            await fs.ReadAsync(file, Math.Max(0, file.SizeBytes - buffer.Length), buffer, CancellationToken.None);
        }
        catch (ImgToolException)
        {
        }
    }

    private static async Task IgnoreErrors(Task task)
    {
        try
        {
            await task;
        }
        catch (ImgToolException)
        {
        }
    }

    private static async Task<string> ExtImage(TempDir dir, string options)
    {
        string source = dir.File("src");
        Directory.CreateDirectory(Path.Combine(source, "a", "b", "c"));
        File.WriteAllBytes(Path.Combine(source, "a", "data.bin"), Enumerable.Range(0, 70000).Select(i => (byte)i).ToArray());
        File.WriteAllText(Path.Combine(source, "a", "b", "note.txt"), "note\n");
        File.CreateSymbolicLink(Path.Combine(source, "a", "link"), "b/note.txt");
        string image = dir.File("ext.img");
        await HostTools.Run("truncate", "-s", "8M", image);
        await HostTools.Shell($"mke2fs -q {options} -d '{source}' '{image}'");
        return image;
    }

    private static async Task<string> FatImage(TempDir dir)
    {
        string source = dir.File("fatsrc");
        Directory.CreateDirectory(Path.Combine(source, "Sub Dir", "deeper"));
        File.WriteAllBytes(Path.Combine(source, "Sub Dir", "data.bin"), new byte[70000]);
        File.WriteAllText(Path.Combine(source, "A long file name.txt"), "x\n");
        string image = dir.File("fat.img");
        await HostTools.Run("truncate", "-s", "8M", image);
        await HostTools.Shell($"mkfs.vfat -F 16 -s 1 '{image}' >/dev/null && cd '{source}' && mcopy -s -i '{image}' * ::/");
        return image;
    }

    /// <summary>Sets the inode number of the directory entry with this name (found by its name bytes; the test images
    /// are small enough that the name appears once).</summary>
    private static void PatchDirectoryEntryInode(string image, string name, uint inode)
    {
        byte[] bytes = File.ReadAllBytes(image);
        byte[] needle = Encoding.ASCII.GetBytes(name);
        int at = bytes.AsSpan().IndexOf(needle);
        Assert.True(at >= 8 && bytes[at - 2] == needle.Length, "directory entry not found");
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at - 8), inode);
        File.WriteAllBytes(image, bytes);
    }

    /// <summary>Points the last cluster of a root-directory file's chain back at its first (FAT16).</summary>
    private static void MakeFatChainLoop(string image, string shortName)
    {
        byte[] bytes = File.ReadAllBytes(image);
        int sector = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(11));
        int reserved = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(14));
        int fats = bytes[16];
        int fatSectors = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(22));
        int fat = reserved * sector;
        int root = fat + (fats * fatSectors * sector);
        int entry = bytes.AsSpan(root).IndexOf(Encoding.ASCII.GetBytes(shortName)) + root;
        ushort first = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(entry + 26));
        ushort cluster = first;
        while (BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(fat + (cluster * 2))) is var next && next < 0xFFF8)
        {
            cluster = next;
        }

        Assert.NotEqual(first, cluster);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(fat + (cluster * 2)), first);
        File.WriteAllBytes(image, bytes);
    }

    private static void WriteMbrEntry(byte[] disk, int sectorOffset, int slot, byte type, long start, long count)
    {
        Span<byte> e = disk.AsSpan(sectorOffset + 446 + (slot * 16), 16);
        e[4] = type;
        BinaryPrimitives.WriteUInt32LittleEndian(e[8..], (uint)start);
        BinaryPrimitives.WriteUInt32LittleEndian(e[12..], (uint)count);
        disk[sectorOffset + 510] = 0x55;
        disk[sectorOffset + 511] = 0xAA;
    }
}

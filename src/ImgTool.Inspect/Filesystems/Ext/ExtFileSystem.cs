using System.Buffers.Binary;
using System.Text;
using ImgTool.Inspect.Disk;
using ImgTool.Inspect.Files;

namespace ImgTool.Inspect.Filesystems.Ext;

/// <summary>Reads ext2/3/4 directories and files (the kernel's Documentation/filesystems/ext4): block maps and
/// extent trees, htree directories (read linearly: their index blocks look like empty entries), inline data, fast and
/// slow symlinks, holes. Every block number, inode number and count is checked before it is used.</summary>
internal sealed class ExtFileSystem : IGuestFileSystem
{
    public const uint RootInode = 2;

    /// <summary>Directories larger than this are refused (the largest real ones are a few MiB).</summary>
    public const long MaxDirectoryBytes = 256L << 20;

    /// <summary>A file described by more runs than this is refused rather than mapped into memory.</summary>
    public const int MaxRuns = 1 << 20;

    /// <summary>ext4 allows an extent tree of depth 5 at most (ext4_ext_check: EXT4_MAX_EXTENT_DEPTH).</summary>
    private const int MaxExtentDepth = 5;
    private const ushort ExtentMagic = 0xF30A;
    private const int DirectBlocks = 12;
    private const int GroupInodeTableLoField = 8;
    private const int GroupInodeTableHiField = 0x28;
    private const uint IncompatMetaBg = 0x10;
    private const int InodeCacheBytes = 4 << 20;

    private readonly DiskView volume;
    private readonly ExtSuperblock sb;
    private readonly long groupCount;
    /// <summary>Inode tables found so far, by group (a listing reads many inodes of the same few groups).</summary>
    private readonly Dictionary<long, long> inodeTables = [];
    private (uint Inode, List<Run> Runs)? lastRuns;

    /// <summary>Inode-table blocks read so far, up to <see cref="InodeCacheBytes"/>: the inodes of one directory sit in
    /// a few blocks, but an htree lists them in hash order, so one cached block would miss almost every time.</summary>
    private readonly Dictionary<long, byte[]> inodeBlocks = [];

    private ExtFileSystem(DiskView volume, ExtSuperblock sb, long groupCount, string type)
    {
        this.volume = volume;
        this.sb = sb;
        this.groupCount = groupCount;
        Type = type;
        Root = new GuestEntry("/", GuestFileKind.Directory, 0, PosixMode.Directory, 0, 0, null, RootInode);
    }

    public string Type { get; }

    public GuestEntry Root { get; private set; }

    /// <summary>One contiguous piece of a file: <see cref="Length"/> blocks from logical block <see cref="Logical"/>
    /// stored at <see cref="Physical"/> (0: a hole or an unwritten extent, which read as zeros).</summary>
    private readonly record struct Run(long Logical, long Physical, long Length);

    public static async ValueTask<ExtFileSystem> OpenAsync(DiskView volume, string type, CancellationToken cancellationToken)
    {
        byte[] raw = await volume.ReadBytesAsync(ExtSuperblock.OffsetBytes, ExtSuperblock.SizeBytes, "ext superblock", cancellationToken).ConfigureAwait(false);
        ExtSuperblock sb = ExtSuperblock.Read(raw);
        if (sb.BlockSizeBytes == 0 || sb.BlocksPerGroup == 0 || sb.InodesPerGroup == 0 || sb.InodeSizeBytes < 128
            || sb.InodeSizeBytes > sb.BlockSizeBytes || !int.IsPow2(sb.InodeSizeBytes) || sb.DescriptorSizeBytes < 32 || sb.DescriptorSizeBytes > 1024)
        {
            throw new FilesystemCorruptException("the ext superblock has an impossible block, inode or descriptor size");
        }

        if ((sb.FeatureIncompat & IncompatMetaBg) != 0)
        {
            throw new FilesystemCorruptException("ext meta_bg layouts are not read by imgtool");
        }

        long groups = (long)((sb.BlocksCount - sb.FirstDataBlock + sb.BlocksPerGroup - 1) / sb.BlocksPerGroup);
        if (groups <= 0 || groups * sb.InodesPerGroup < sb.InodesCount)
        {
            throw new FilesystemCorruptException("the ext superblock's group and inode counts disagree");
        }

        var fs = new ExtFileSystem(volume, sb, groups, type);
        GuestEntry root = await fs.EntryAsync(RootInode, "/", cancellationToken).ConfigureAwait(false);
        if (root.Kind != GuestFileKind.Directory)
        {
            throw new FilesystemCorruptException("the ext root inode is not a directory");
        }

        fs.Root = root;
        return fs;
    }

    public async ValueTask<IReadOnlyList<GuestEntry>> ListAsync(GuestEntry directory, CancellationToken cancellationToken)
    {
        ExtInode inode = await ReadInodeAsync((uint)directory.Id, cancellationToken).ConfigureAwait(false);
        if (PosixMode.Kind(inode.Mode) != GuestFileKind.Directory)
        {
            throw new GuestPathException($"{directory.Name}: not a directory");
        }

        if (inode.SizeBytes > MaxDirectoryBytes)
        {
            throw new FilesystemCorruptException($"{directory.Name}: directory of {inode.SizeBytes} bytes is larger than imgtool reads");
        }

        var names = new List<(uint Inode, string Name)>();
        if (inode.HasInlineData)
        {
            // i_block starts with the parent's inode number; entries follow, and continue in the system.data attribute.
            ParseEntries(inode.Block.AsSpan(4), directory.Name, names);
            if (inode.InlineDataXattr is { Length: > 0 } more)
            {
                ParseEntries(more, directory.Name, names);
            }
        }
        else
        {
            byte[] data = new byte[inode.SizeBytes];
            await ReadInodeDataAsync(inode, 0, data, cancellationToken).ConfigureAwait(false);
            for (int block = 0; block < data.Length; block += sb.BlockSizeBytes)
            {
                ParseEntries(data.AsSpan(block, Math.Min(sb.BlockSizeBytes, data.Length - block)), directory.Name, names);
            }
        }

        var entries = new List<GuestEntry>(names.Count);
        foreach (var (number, name) in names)
        {
            if (name is "." or "..")
            {
                continue;
            }

            entries.Add(await EntryAsync(number, name, cancellationToken).ConfigureAwait(false));
        }

        return entries;
    }

    public async ValueTask<int> ReadAsync(GuestEntry file, long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        ExtInode inode = await ReadInodeAsync((uint)file.Id, cancellationToken).ConfigureAwait(false);
        long end = Math.Min(inode.SizeBytes, offsetBytes + buffer.Length);
        if (offsetBytes >= end)
        {
            return 0;
        }

        int length = (int)(end - offsetBytes);
        await ReadInodeDataAsync(inode, offsetBytes, buffer[..length], cancellationToken).ConfigureAwait(false);
        return length;
    }

    public async ValueTask<string> ReadLinkAsync(GuestEntry symlink, CancellationToken cancellationToken)
    {
        ExtInode inode = await ReadInodeAsync((uint)symlink.Id, cancellationToken).ConfigureAwait(false);
        if (inode.SizeBytes > sb.BlockSizeBytes)
        {
            throw new FilesystemCorruptException($"{symlink.Name}: symbolic link of {inode.SizeBytes} bytes is longer than a block");
        }

        // A fast symlink keeps its target in i_block itself: no extents flag, no data blocks (an xattr block aside).
        long xattrBlocks = inode.FileAcl != 0 ? sb.BlockSizeBytes / 512 : 0;
        bool fast = !inode.HasInlineData && !inode.UsesExtents && inode.SizeBytes < ExtInode.BlockFieldBytes && inode.BlockCount512 - xattrBlocks <= 0;
        byte[] target = new byte[inode.SizeBytes];
        if (fast)
        {
            inode.Block.AsSpan(0, target.Length).CopyTo(target);
        }
        else
        {
            await ReadInodeDataAsync(inode, 0, target, cancellationToken).ConfigureAwait(false);
        }

        return Encoding.UTF8.GetString(target);
    }

    private static void ParseEntries(ReadOnlySpan<byte> block, string directory, List<(uint, string)> names)
    {
        for (int offset = 0; offset + 8 <= block.Length;)
        {
            uint inode = BinaryPrimitives.ReadUInt32LittleEndian(block[offset..]);
            int recordLength = BinaryPrimitives.ReadUInt16LittleEndian(block[(offset + 4)..]);
            int nameLength = block[offset + 6];
            if (recordLength < 8 || recordLength % 4 != 0 || offset + recordLength > block.Length || 8 + nameLength > recordLength)
            {
                // Inline directories may end in padding; a block directory entry must fit its block.
                if (inode == 0 && recordLength == 0)
                {
                    return;
                }

                throw new FilesystemCorruptException($"{directory}: directory entry at byte {offset} has a bad record length {recordLength}");
            }

            if (inode != 0 && nameLength > 0)
            {
                names.Add((inode, Encoding.UTF8.GetString(block.Slice(offset + 8, nameLength))));
            }

            offset += recordLength;
        }
    }

    private async ValueTask<GuestEntry> EntryAsync(uint number, string name, CancellationToken cancellationToken)
    {
        ExtInode inode = await ReadInodeAsync(number, cancellationToken).ConfigureAwait(false);
        return new GuestEntry(name, PosixMode.Kind(inode.Mode), inode.SizeBytes, inode.Mode, inode.Uid, inode.Gid,
            DateTimeOffset.FromUnixTimeSeconds(inode.ModifiedSeconds), number, inode.LinkCount);
    }

    private async ValueTask<ExtInode> ReadInodeAsync(uint number, CancellationToken cancellationToken)
    {
        if (number < 1 || number > sb.InodesCount)
        {
            throw new FilesystemCorruptException($"inode number {number} is out of range (the file system has {sb.InodesCount})");
        }

        long group = (number - 1) / sb.InodesPerGroup;
        long index = (number - 1) % sb.InodesPerGroup;
        if (!inodeTables.TryGetValue(group, out long table))
        {
            long descriptorOffset = ((sb.FirstDataBlock + 1L) * sb.BlockSizeBytes) + (group * sb.DescriptorSizeBytes);
            byte[] descriptor = await volume.ReadBytesAsync(descriptorOffset, sb.DescriptorSizeBytes, "ext group descriptor", cancellationToken).ConfigureAwait(false);
            table = BinaryPrimitives.ReadUInt32LittleEndian(descriptor.AsSpan(GroupInodeTableLoField));
            if (sb.Is64Bit && sb.DescriptorSizeBytes >= 64)
            {
                table |= (long)BinaryPrimitives.ReadUInt32LittleEndian(descriptor.AsSpan(GroupInodeTableHiField)) << 32;
            }

            CheckBlock(table, $"inode table of group {group}");
            inodeTables[group] = table;
        }

        long inodeOffset = (table * sb.BlockSizeBytes) + (index * sb.InodeSizeBytes);
        long blockOffset = inodeOffset - (inodeOffset % sb.BlockSizeBytes);
        if (!inodeBlocks.TryGetValue(blockOffset, out byte[]? block))
        {
            if ((long)(inodeBlocks.Count + 1) * sb.BlockSizeBytes > InodeCacheBytes)
            {
                inodeBlocks.Clear();
            }

            block = await volume.ReadBytesAsync(blockOffset, sb.BlockSizeBytes, $"inode {number}", cancellationToken).ConfigureAwait(false);
            inodeBlocks[blockOffset] = block;
        }

        ReadOnlySpan<byte> raw = block.AsSpan((int)(inodeOffset - blockOffset), sb.InodeSizeBytes);
        ExtInode inode = ExtInode.Read(number, raw);
        if (inode.SizeBytes < 0)
        {
            throw new FilesystemCorruptException($"inode {number} has an impossible size");
        }

        return inode;
    }

    private void CheckBlock(long block, string what)
    {
        if (block <= 0 || (ulong)block >= sb.BlocksCount || block >= volume.LengthBytes / sb.BlockSizeBytes)
        {
            throw new FilesystemCorruptException($"{what} points to block {block}, past the end of the file system ({sb.BlocksCount} blocks)");
        }
    }

    /// <summary>Reads [offset, offset + buffer.Length) of an inode's data, which the caller has kept inside its size.</summary>
    private async ValueTask ReadInodeDataAsync(ExtInode inode, long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (inode.HasInlineData)
        {
            byte[] inline = [.. inode.Block, .. inode.InlineDataXattr ?? []];
            buffer.Span.Clear();
            if (offsetBytes < inline.Length)
            {
                int n = (int)Math.Min(buffer.Length, inline.Length - offsetBytes);
                inline.AsSpan((int)offsetBytes, n).CopyTo(buffer.Span);
            }

            return;
        }

        List<Run> runs = await RunsAsync(inode, cancellationToken).ConfigureAwait(false);
        int blockBytes = sb.BlockSizeBytes;
        int done = 0;
        while (done < buffer.Length)
        {
            long position = offsetBytes + done;
            long logical = position / blockBytes;
            int index = FindRun(runs, logical);
            long runEnd;
            long physical = 0;
            if (index >= 0)
            {
                Run run = runs[index];
                runEnd = (run.Logical + run.Length) * blockBytes;
                physical = run.Physical == 0 ? 0 : ((run.Physical + (logical - run.Logical)) * blockBytes) + (position % blockBytes);
            }
            else
            {
                // A hole: up to the next run, or to the end of the request.
                int next = ~index;
                runEnd = next < runs.Count ? runs[next].Logical * blockBytes : long.MaxValue;
            }

            int length = (int)Math.Min(buffer.Length - done, runEnd - position);
            Memory<byte> part = buffer.Slice(done, length);
            if (physical == 0)
            {
                part.Span.Clear();
            }
            else
            {
                await volume.ReadAsync(physical, part, $"data of inode {inode.Number}", cancellationToken).ConfigureAwait(false);
            }

            done += length;
        }
    }

    /// <summary>The run holding a logical block, or the bitwise complement of the index of the next run (a hole).</summary>
    private static int FindRun(List<Run> runs, long logical)
    {
        int low = 0;
        int high = runs.Count - 1;
        while (low <= high)
        {
            int mid = (low + high) >>> 1;
            Run run = runs[mid];
            if (logical < run.Logical)
            {
                high = mid - 1;
            }
            else if (logical >= run.Logical + run.Length)
            {
                low = mid + 1;
            }
            else
            {
                return mid;
            }
        }

        return ~low;
    }

    private async ValueTask<List<Run>> RunsAsync(ExtInode inode, CancellationToken cancellationToken)
    {
        if (lastRuns is { } cached && cached.Inode == inode.Number)
        {
            return cached.Runs;
        }

        var runs = new List<Run>();
        long fileBlocks = (inode.SizeBytes + sb.BlockSizeBytes - 1) / sb.BlockSizeBytes;
        if (inode.UsesExtents)
        {
            await WalkExtentsAsync(inode.Block, inode.Number, MaxExtentDepth, runs, cancellationToken).ConfigureAwait(false);
            runs.Sort((a, b) => a.Logical.CompareTo(b.Logical));
            for (int i = 1; i < runs.Count; i++)
            {
                if (runs[i].Logical < runs[i - 1].Logical + runs[i - 1].Length)
                {
                    throw new FilesystemCorruptException($"inode {inode.Number}: extents overlap at logical block {runs[i].Logical}");
                }
            }
        }
        else
        {
            await WalkBlockMapAsync(inode, fileBlocks, runs, cancellationToken).ConfigureAwait(false);
        }

        lastRuns = (inode.Number, runs);
        return runs;
    }

    /// <summary>An extent tree node: a 12-byte header (magic 0xF30A, entries, max, depth), then leaves
    /// (logical block, length, physical block; a length over 32768 marks an unwritten extent) or index entries.</summary>
    private async ValueTask WalkExtentsAsync(ReadOnlyMemory<byte> node, uint inode, int depthLeft, List<Run> runs, CancellationToken cancellationToken)
    {
        ReadOnlySpan<byte> h = node.Span;
        if (BinaryPrimitives.ReadUInt16LittleEndian(h) != ExtentMagic)
        {
            throw new FilesystemCorruptException($"inode {inode}: extent tree node has no 0xF30A magic");
        }

        int count = BinaryPrimitives.ReadUInt16LittleEndian(h[2..]);
        int depth = BinaryPrimitives.ReadUInt16LittleEndian(h[6..]);
        if (12 + (count * 12) > h.Length || depth > depthLeft)
        {
            throw new FilesystemCorruptException($"inode {inode}: extent tree node has {count} entries at depth {depth}, more than it can hold");
        }

        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> e = node.Span.Slice(12 + (i * 12), 12);
            long logical = BinaryPrimitives.ReadUInt32LittleEndian(e);
            if (depth == 0)
            {
                int length = BinaryPrimitives.ReadUInt16LittleEndian(e[4..]);
                bool unwritten = length > 32768;
                if (unwritten)
                {
                    length -= 32768;
                }

                long physical = BinaryPrimitives.ReadUInt32LittleEndian(e[8..]) | ((long)BinaryPrimitives.ReadUInt16LittleEndian(e[6..]) << 32);
                if (length == 0)
                {
                    continue;
                }

                CheckBlock(physical, $"inode {inode}: extent at logical block {logical}");
                CheckBlock(physical + length - 1, $"inode {inode}: extent at logical block {logical}");
                if (runs.Count >= MaxRuns)
                {
                    throw new FilesystemCorruptException($"inode {inode}: more than {MaxRuns} extents");
                }

                runs.Add(new Run(logical, unwritten ? 0 : physical, length));
            }
            else
            {
                long child = BinaryPrimitives.ReadUInt32LittleEndian(e[4..]) | ((long)BinaryPrimitives.ReadUInt16LittleEndian(e[8..]) << 32);
                CheckBlock(child, $"inode {inode}: extent index");
                byte[] block = await volume.ReadBytesAsync(child * sb.BlockSizeBytes, sb.BlockSizeBytes, $"extent block of inode {inode}", cancellationToken).ConfigureAwait(false);
                await WalkExtentsAsync(block, inode, depth - 1, runs, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The ext2/3 block map: 12 direct blocks, then single, double and triple indirect blocks of 32-bit pointers.</summary>
    private async ValueTask WalkBlockMapAsync(ExtInode inode, long fileBlocks, List<Run> runs, CancellationToken cancellationToken)
    {
        long logical = 0;
        for (int i = 0; i < DirectBlocks && logical < fileBlocks; i++, logical++)
        {
            Add(runs, inode.Number, logical, BinaryPrimitives.ReadUInt32LittleEndian(inode.Block.AsSpan(i * 4)));
        }

        long perBlock = sb.BlockSizeBytes / 4;
        for (int level = 1; level <= 3 && logical < fileBlocks; level++)
        {
            uint pointer = BinaryPrimitives.ReadUInt32LittleEndian(inode.Block.AsSpan((DirectBlocks + level - 1) * 4));
            long span = (long)Math.Pow(perBlock, level);
            if (pointer == 0)
            {
                logical += span;
                continue;
            }

            logical = await WalkIndirectAsync(inode.Number, pointer, level, logical, fileBlocks, runs, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask<long> WalkIndirectAsync(uint inode, uint block, int level, long logical, long fileBlocks, List<Run> runs, CancellationToken cancellationToken)
    {
        CheckBlock(block, $"inode {inode}: indirect block");
        byte[] pointers = await volume.ReadBytesAsync((long)block * sb.BlockSizeBytes, sb.BlockSizeBytes, $"indirect block of inode {inode}", cancellationToken).ConfigureAwait(false);
        long perBlock = sb.BlockSizeBytes / 4;
        long childSpan = (long)Math.Pow(perBlock, level - 1);
        for (int i = 0; i < perBlock && logical < fileBlocks; i++)
        {
            uint pointer = BinaryPrimitives.ReadUInt32LittleEndian(pointers.AsSpan(i * 4));
            if (level == 1)
            {
                Add(runs, inode, logical, pointer);
                logical++;
            }
            else if (pointer == 0)
            {
                logical += childSpan;
            }
            else
            {
                logical = await WalkIndirectAsync(inode, pointer, level - 1, logical, fileBlocks, runs, cancellationToken).ConfigureAwait(false);
            }
        }

        return logical;
    }

    /// <summary>Adds one mapped block, merged into the previous run when it continues it.</summary>
    private void Add(List<Run> runs, uint inode, long logical, uint physical)
    {
        if (physical == 0)
        {
            return;
        }

        CheckBlock(physical, $"inode {inode}: block {logical}");
        if (runs.Count > 0 && runs[^1] is var last && last.Logical + last.Length == logical && last.Physical + last.Length == physical)
        {
            runs[^1] = last with { Length = last.Length + 1 };
            return;
        }

        if (runs.Count >= MaxRuns)
        {
            throw new FilesystemCorruptException($"inode {inode}: more than {MaxRuns} separate block runs");
        }

        runs.Add(new Run(logical, physical, 1));
    }
}

using System.Buffers.Binary;
using System.Text;
using ImgTool.Inspect.Disk;
using ImgTool.Inspect.Files;

namespace ImgTool.Inspect.Filesystems.Fat;

/// <summary>Reads FAT12/16/32 directories and files (fatgen103 sections 4-7, long names per section 7). Every cluster
/// chain is checked as it is followed: a free or out-of-range cluster, or a chain longer than the volume has clusters
/// (a loop), is a clear error for that file.</summary>
internal sealed class FatFileSystem : IGuestFileSystem
{
    /// <summary>The whole first FAT is read once; a larger one (a FAT32 volume of several TiB) is refused.</summary>
    public const long MaxFatBytes = 64L << 20;

    private const int EntryBytes = 32;
    private const byte AttrReadOnly = 0x01;
    private const byte AttrVolumeId = 0x08;
    private const byte AttrDirectory = 0x10;
    private const byte AttrLongName = 0x0F;
    private const byte DeletedMarker = 0xE5;
    private const byte LowercaseBase = 0x08;
    private const byte LowercaseExtension = 0x10;

    /// <summary>The root directory of FAT12/16 has no cluster; this id stands for it.</summary>
    private const long FixedRootId = 0;

    private readonly DiskView volume;
    private readonly FatBootSector boot;
    private byte[]? fat;

    /// <summary>The chain of the file read last: cat reads one file in many pieces.</summary>
    private (uint First, List<uint> Chain)? lastChain;

    public FatFileSystem(DiskView volume, FatBootSector boot)
    {
        this.volume = volume;
        this.boot = boot;
        Root = new GuestEntry("/", GuestFileKind.Directory, 0, PosixMode.Directory | 0x1ED, 0, 0, null, boot.Kind == FatKind.Fat32 ? boot.RootCluster : FixedRootId);
    }

    public string Type => "vfat";

    public GuestEntry Root { get; }

    public static FatFileSystem? TryOpen(DiskView volume, ReadOnlySpan<byte> bootSector) =>
        FatBootSector.TryRead(bootSector) is { } boot ? new FatFileSystem(volume, boot) : null;

    /// <summary>The label from the root directory's volume-label entry, or null.</summary>
    public async ValueTask<string?> ReadVolumeLabelAsync(CancellationToken cancellationToken)
    {
        byte[] root = await ReadDirectoryBytesAsync(Root, cancellationToken).ConfigureAwait(false);
        for (int e = 0; e + EntryBytes <= root.Length; e += EntryBytes)
        {
            byte first = root[e];
            if (first == 0)
            {
                break;
            }

            byte attr = root[e + 11];
            if (first != DeletedMarker && attr != AttrLongName && (attr & AttrVolumeId) != 0)
            {
                return Encoding.Latin1.GetString(root, e, 11).TrimEnd(' ') is { Length: > 0 } label ? label : null;
            }
        }

        return null;
    }

    public async ValueTask<IReadOnlyList<GuestEntry>> ListAsync(GuestEntry directory, CancellationToken cancellationToken)
    {
        byte[] data = await ReadDirectoryBytesAsync(directory, cancellationToken).ConfigureAwait(false);
        var entries = new List<GuestEntry>();
        var longName = new char[20 * 13];
        int longNameLength = 0;
        int expectedOrdinal = 0;
        byte checksum = 0;
        for (int e = 0; e + EntryBytes <= data.Length; e += EntryBytes)
        {
            ReadOnlySpan<byte> entry = data.AsSpan(e, EntryBytes);
            byte first = entry[0];
            if (first == 0)
            {
                break;
            }

            byte attr = entry[11];
            if (first == DeletedMarker)
            {
                expectedOrdinal = 0;
                continue;
            }

            if (attr == AttrLongName)
            {
                // Long-name pieces come last piece first (ordinal | 0x40), down to ordinal 1, each with the short name's checksum.
                int ordinal = first & 0x1F;
                if ((first & 0x40) != 0)
                {
                    expectedOrdinal = ordinal;
                    checksum = entry[13];
                    longNameLength = 0;
                    Array.Fill(longName, '\0');
                }
                else if (ordinal != expectedOrdinal || entry[13] != checksum)
                {
                    expectedOrdinal = 0;
                    continue;
                }

                if (ordinal is 0 or > 20)
                {
                    expectedOrdinal = 0;
                    continue;
                }

                int at = (ordinal - 1) * 13;
                CopyNameChars(entry.Slice(1, 10), longName.AsSpan(at));
                CopyNameChars(entry.Slice(14, 12), longName.AsSpan(at + 5));
                CopyNameChars(entry.Slice(28, 4), longName.AsSpan(at + 11));
                longNameLength = Math.Max(longNameLength, at + 13);
                expectedOrdinal = ordinal - 1;
                continue;
            }

            bool haveLongName = expectedOrdinal == 0 && longNameLength > 0 && checksum == ShortNameChecksum(entry[..11]);
            string? name = haveLongName ? new string(longName, 0, longNameLength).Split('\0')[0] : null;
            longNameLength = 0;
            expectedOrdinal = 0;
            if ((attr & AttrVolumeId) != 0)
            {
                continue;
            }

            name ??= ShortName(entry);
            if (name is "." or "..")
            {
                continue;
            }

            bool isDirectory = (attr & AttrDirectory) != 0;
            uint cluster = BinaryPrimitives.ReadUInt16LittleEndian(entry[26..]) | ((uint)BinaryPrimitives.ReadUInt16LittleEndian(entry[20..]) << 16);
            if (boot.Kind != FatKind.Fat32)
            {
                cluster &= 0xFFFF;
            }

            uint mode = isDirectory ? PosixMode.Directory | 0x1ED : PosixMode.Regular | ((attr & AttrReadOnly) != 0 ? 0x124u : 0x1A4u);
            entries.Add(new GuestEntry(
                name,
                isDirectory ? GuestFileKind.Directory : GuestFileKind.File,
                isDirectory ? 0 : BinaryPrimitives.ReadUInt32LittleEndian(entry[28..]),
                mode,
                0,
                0,
                DosTime(BinaryPrimitives.ReadUInt16LittleEndian(entry[24..]), BinaryPrimitives.ReadUInt16LittleEndian(entry[22..])),
                cluster));
        }

        return entries;
    }

    public async ValueTask<int> ReadAsync(GuestEntry file, long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        long end = Math.Min(file.SizeBytes, offsetBytes + buffer.Length);
        if (offsetBytes >= end)
        {
            return 0;
        }

        List<uint> chain = await ChainAsync((uint)file.Id, file.Name, cancellationToken).ConfigureAwait(false);
        int clusterBytes = boot.ClusterBytes;
        if ((long)chain.Count * clusterBytes < file.SizeBytes)
        {
            throw new FilesystemCorruptException($"{file.Name}: the cluster chain holds {(long)chain.Count * clusterBytes} bytes, the directory entry says {file.SizeBytes}");
        }

        int done = 0;
        for (long position = offsetBytes; position < end;)
        {
            int index = (int)(position / clusterBytes);
            int within = (int)(position % clusterBytes);
            int length = (int)Math.Min(clusterBytes - within, end - position);
            await volume.ReadAsync(ClusterOffset(chain[index]) + within, buffer.Slice(done, length), "FAT cluster", cancellationToken).ConfigureAwait(false);
            done += length;
            position += length;
        }

        return done;
    }

    public ValueTask<string> ReadLinkAsync(GuestEntry symlink, CancellationToken cancellationToken) =>
        throw new GuestPathException($"{symlink.Name}: FAT has no symbolic links");

    private static void CopyNameChars(ReadOnlySpan<byte> source, Span<char> target)
    {
        for (int i = 0; i < source.Length / 2; i++)
        {
            char c = (char)BinaryPrimitives.ReadUInt16LittleEndian(source[(i * 2)..]);
            target[i] = c == '\uFFFF' ? '\0' : c;
        }
    }

    private static byte ShortNameChecksum(ReadOnlySpan<byte> shortName)
    {
        byte sum = 0;
        foreach (byte b in shortName)
        {
            sum = (byte)((((sum & 1) << 7) | (sum >> 1)) + b);
        }

        return sum;
    }

    /// <summary>"NAME.EXT", with the lower-case flags Windows NT and Linux set in byte 12 applied.</summary>
    private static string ShortName(ReadOnlySpan<byte> entry)
    {
        byte[] raw = entry[..11].ToArray();
        if (raw[0] == 0x05)
        {
            raw[0] = DeletedMarker; // a real first byte 0xE5 is stored as 0x05
        }

        string baseName = Encoding.Latin1.GetString(raw, 0, 8).TrimEnd(' ');
        string extension = Encoding.Latin1.GetString(raw, 8, 3).TrimEnd(' ');
        if ((entry[12] & LowercaseBase) != 0)
        {
            baseName = baseName.ToLowerInvariant();
        }

        if ((entry[12] & LowercaseExtension) != 0)
        {
            extension = extension.ToLowerInvariant();
        }

        return extension.Length > 0 ? $"{baseName}.{extension}" : baseName;
    }

    private static DateTimeOffset? DosTime(ushort date, ushort time)
    {
        int year = 1980 + (date >> 9);
        int month = (date >> 5) & 0xF;
        int day = date & 0x1F;
        int hour = time >> 11;
        int minute = (time >> 5) & 0x3F;
        int second = (time & 0x1F) * 2;
        if (month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return null;
        }

        return new DateTimeOffset(year, month, day, hour, minute, second, TimeSpan.Zero);
    }

    private long ClusterOffset(uint cluster) => boot.DataOffsetBytes + ((long)(cluster - 2) * boot.ClusterBytes);

    private async ValueTask<byte[]> ReadDirectoryBytesAsync(GuestEntry directory, CancellationToken cancellationToken)
    {
        if (directory.Id == FixedRootId && boot.Kind != FatKind.Fat32)
        {
            return await volume.ReadBytesAsync(boot.RootDirOffsetBytes, (int)boot.RootDirBytes, "FAT root directory", cancellationToken).ConfigureAwait(false);
        }

        List<uint> chain = await ChainAsync((uint)directory.Id, directory.Name, cancellationToken).ConfigureAwait(false);
        // A directory holds at most 65536 entries (fatgen103 section 6), 2 MiB.
        if ((long)chain.Count * boot.ClusterBytes > 65536L * EntryBytes)
        {
            throw new FilesystemCorruptException($"{directory.Name}: directory of {chain.Count} clusters is larger than FAT allows");
        }

        byte[] data = new byte[chain.Count * boot.ClusterBytes];
        for (int i = 0; i < chain.Count; i++)
        {
            await volume.ReadAsync(ClusterOffset(chain[i]), data.AsMemory(i * boot.ClusterBytes, boot.ClusterBytes), "FAT directory cluster", cancellationToken).ConfigureAwait(false);
        }

        return data;
    }

    /// <summary>The clusters of a chain from its first cluster to its end-of-chain mark.</summary>
    private async ValueTask<List<uint>> ChainAsync(uint first, string name, CancellationToken cancellationToken)
    {
        if (lastChain is { } cached && cached.First == first)
        {
            return cached.Chain;
        }

        var chain = new List<uint>();
        if (first == 0)
        {
            return chain; // an empty file
        }

        byte[] table = await FatAsync(cancellationToken).ConfigureAwait(false);
        long clusters = boot.ClusterCount;
        for (uint cluster = first; ;)
        {
            if (cluster < 2 || cluster >= clusters + 2)
            {
                throw new FilesystemCorruptException($"{name}: cluster chain points to cluster {cluster}, outside the volume's {clusters} clusters");
            }

            if (chain.Count >= clusters)
            {
                throw new FilesystemCorruptException($"{name}: the cluster chain loops (longer than the volume's {clusters} clusters)");
            }

            chain.Add(cluster);
            uint next = Entry(table, cluster);
            if (next >= EndOfChain)
            {
                lastChain = (first, chain);
                return chain;
            }

            if (next == 0 || next == BadCluster)
            {
                throw new FilesystemCorruptException($"{name}: the cluster chain runs into a {(next == 0 ? "free" : "bad")} cluster after cluster {cluster}");
            }

            cluster = next;
        }
    }

    private uint EndOfChain => boot.Kind switch { FatKind.Fat12 => 0xFF8, FatKind.Fat16 => 0xFFF8, _ => 0x0FFFFFF8 };

    private uint BadCluster => EndOfChain - 1;

    private uint Entry(byte[] table, uint cluster)
    {
        long offset = boot.Kind switch { FatKind.Fat12 => cluster + (cluster / 2), FatKind.Fat16 => cluster * 2L, _ => cluster * 4L };
        if (offset + (boot.Kind == FatKind.Fat32 ? 4 : 2) > table.Length)
        {
            throw new FilesystemCorruptException($"cluster {cluster} lies beyond the end of the FAT");
        }

        return boot.Kind switch
        {
            FatKind.Fat12 => (cluster & 1) == 0
                ? (uint)(BinaryPrimitives.ReadUInt16LittleEndian(table.AsSpan((int)offset)) & 0xFFF)
                : (uint)(BinaryPrimitives.ReadUInt16LittleEndian(table.AsSpan((int)offset)) >> 4),
            FatKind.Fat16 => BinaryPrimitives.ReadUInt16LittleEndian(table.AsSpan((int)offset)),
            _ => BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan((int)offset)) & 0x0FFFFFFF,
        };
    }

    private async ValueTask<byte[]> FatAsync(CancellationToken cancellationToken)
    {
        if (fat is null)
        {
            long bytes = boot.SectorsPerFat * boot.BytesPerSector;
            if (bytes > MaxFatBytes)
            {
                throw new FilesystemCorruptException($"the FAT of {bytes} bytes is larger than imgtool reads ({MaxFatBytes})");
            }

            fat = await volume.ReadBytesAsync(boot.FatOffsetBytes, (int)bytes, "FAT", cancellationToken).ConfigureAwait(false);
        }

        return fat;
    }
}

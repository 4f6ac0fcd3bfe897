using System.Buffers.Binary;
using System.Security.Cryptography;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Parallels;

/// <summary>
/// One dirty bitmap of the format extension (parallels.txt, "Dirty bitmaps feature"): its id (a UUID), how many bytes
/// of disk one bit covers, and its L1 table, whose entries are 0 (a cluster of clear bits), 1 (a cluster of set bits)
/// or the sector offset of a cluster of bitmap data (bit k in byte k / 8, bit k % 8).
/// </summary>
internal sealed record ParallelsDirtyBitmap(string Id, long GranularityBytes, ulong[] L1Table)
{
    /// <summary>The disk ranges whose bits are set, merged, in order.</summary>
    public async ValueTask<IReadOnlyList<(long OffsetBytes, long LengthBytes)>> ReadDirtyRangesAsync(IHostFile file, long clusterBytes, long diskBytes, CancellationToken cancellationToken)
    {
        var ranges = new List<(long OffsetBytes, long LengthBytes)>();
        long bitsPerCluster = clusterBytes * 8;
        long totalBits = (diskBytes + GranularityBytes - 1) / GranularityBytes;
        byte[]? data = null;
        for (int i = 0; i < L1Table.Length; i++)
        {
            long firstBit = i * bitsPerCluster;
            long bits = Math.Min(bitsPerCluster, totalBits - firstBit);
            if (bits <= 0 || L1Table[i] == 0)
            {
                continue;
            }

            if (L1Table[i] == 1)
            {
                Add(firstBit, bits);
                continue;
            }

            data ??= new byte[clusterBytes];
            await file.ReadZeroFilledAsync((long)L1Table[i] * ParallelsLimits.SectorBytes, data, cancellationToken).ConfigureAwait(false);
            for (long bit = 0; bit < bits; bit++)
            {
                if ((data[bit >> 3] & (1 << (int)(bit & 7))) != 0)
                {
                    Add(firstBit + bit, 1);
                }
            }
        }

        return ranges;

        void Add(long bit, long count)
        {
            long start = bit * GranularityBytes;
            long length = Math.Min(count * GranularityBytes, diskBytes - start);
            if (ranges.Count > 0 && ranges[^1].OffsetBytes + ranges[^1].LengthBytes == start)
            {
                ranges[^1] = (ranges[^1].OffsetBytes, ranges[^1].LengthBytes + length);
            }
            else
            {
                ranges.Add((start, length));
            }
        }
    }
}

/// <summary>
/// The format extension cluster (parallels.txt, "Format Extension"): magic, an MD5 of the rest of the cluster, then
/// feature sections (magic, flags, data size, padding to 8 bytes) up to "end of features". Dirty bitmaps are read;
/// other features are skipped, since a reader changes nothing in the file (the spec's NECESSARY flag guards writers).
/// </summary>
internal static class ParallelsExtension
{
    public const ulong Magic = 0xAB234CEF23DCEA87;
    public const ulong EndOfFeaturesMagic = 0;
    public const ulong DirtyBitmapMagic = 0x20385FAE252CB34A;

    private const int MagicField = 0;
    private const int ChecksumField = MagicField + sizeof(ulong);
    private const int ChecksumBytes = 16;
    public const int HeaderBytes = ChecksumField + ChecksumBytes;

    private const int FeatureMagicField = 0;
    private const int FeatureFlagsField = FeatureMagicField + sizeof(ulong);
    private const int FeatureDataSizeField = FeatureFlagsField + sizeof(ulong);
    public const int FeatureHeaderBytes = FeatureDataSizeField + sizeof(uint) + sizeof(uint);

    private const int BitmapSizeField = 0;
    private const int BitmapIdField = BitmapSizeField + sizeof(ulong);
    private const int BitmapGranularityField = BitmapIdField + 16;
    private const int BitmapL1SizeField = BitmapGranularityField + sizeof(uint);
    public const int BitmapHeaderBytes = BitmapL1SizeField + sizeof(uint);

    public static async ValueTask<IReadOnlyList<ParallelsDirtyBitmap>> ReadAsync(IHostFile file, ParallelsHeader header, long fileLength, CancellationToken cancellationToken)
    {
        long clusterBytes = header.ClusterBytes;
        if (header.ExtensionOffsetSectors > (ulong)(fileLength / ParallelsLimits.SectorBytes)
            || (long)header.ExtensionOffsetSectors * ParallelsLimits.SectorBytes > fileLength - clusterBytes)
        {
            throw new ImageCorruptException($"the format extension cluster (sector {header.ExtensionOffsetSectors}) lies past the end of the file", "format extension", 0, file.Path);
        }

        long offset = (long)header.ExtensionOffsetSectors * ParallelsLimits.SectorBytes;
        byte[] cluster = new byte[clusterBytes];
        await file.ReadZeroFilledAsync(offset, cluster, cancellationToken).ConfigureAwait(false);
        if (BinaryPrimitives.ReadUInt64LittleEndian(cluster) != Magic)
        {
            throw new ImageCorruptException($"wrong format extension magic 0x{BinaryPrimitives.ReadUInt64LittleEndian(cluster):x16}", "format extension", offset, file.Path);
        }

#pragma warning disable CA5351 // The format's integrity checksum is MD5 (parallels.txt); it protects nothing secret.
        byte[] checksum = MD5.HashData(cluster.AsSpan(HeaderBytes));
#pragma warning restore CA5351
        if (!checksum.AsSpan().SequenceEqual(cluster.AsSpan(ChecksumField, ChecksumBytes)))
        {
            throw new ImageCorruptException("wrong checksum in the format extension: it is corrupted", "format extension", offset, file.Path);
        }

        var bitmaps = new List<ParallelsDirtyBitmap>();
        long diskSectors = (long)header.EffectiveSectorCount;
        int position = HeaderBytes;
        while (true)
        {
            if (cluster.Length - position < FeatureHeaderBytes)
            {
                throw new ImageCorruptException("the format extension has no end-of-features mark", "format extension", offset + position, file.Path);
            }

            ReadOnlySpan<byte> feature = cluster.AsSpan(position);
            ulong magic = BinaryPrimitives.ReadUInt64LittleEndian(feature[FeatureMagicField..]);
            uint dataBytes = BinaryPrimitives.ReadUInt32LittleEndian(feature[FeatureDataSizeField..]);
            position += FeatureHeaderBytes;
            if (dataBytes > cluster.Length - position)
            {
                throw new ImageCorruptException($"feature data of {dataBytes} bytes exceeds the format extension cluster", "format extension", offset + position, file.Path);
            }

            if (magic == EndOfFeaturesMagic)
            {
                return bitmaps;
            }

            if (magic == DirtyBitmapMagic)
            {
                if (bitmaps.Count >= ParallelsLimits.MaxDirtyBitmaps)
                {
                    throw new ImageCorruptException($"more than {ParallelsLimits.MaxDirtyBitmaps} dirty bitmaps", "format extension", offset + position, file.Path);
                }

                bitmaps.Add(ReadBitmap(cluster.AsSpan(position, (int)dataBytes), diskSectors, clusterBytes, fileLength, offset + position, file.Path));
            }

            position += (int)((dataBytes + 7) & ~7u);
        }
    }

    private static ParallelsDirtyBitmap ReadBitmap(ReadOnlySpan<byte> data, long diskSectors, long clusterBytes, long fileLength, long offset, string path)
    {
        if (data.Length < BitmapHeaderBytes)
        {
            throw new ImageCorruptException("too small dirty bitmap feature in the format extension", "dirty bitmap", offset, path);
        }

        ulong sizeSectors = BinaryPrimitives.ReadUInt64LittleEndian(data[BitmapSizeField..]);
        Guid id = new(data.Slice(BitmapIdField, 16), bigEndian: true);
        uint granularitySectors = BinaryPrimitives.ReadUInt32LittleEndian(data[BitmapGranularityField..]);
        uint l1Size = BinaryPrimitives.ReadUInt32LittleEndian(data[BitmapL1SizeField..]);
        if (sizeSectors != (ulong)diskSectors)
        {
            throw new ImageCorruptException($"dirty bitmap size ({sizeSectors} sectors) differs from the disk size ({diskSectors} sectors)", "dirty bitmap", offset, path);
        }

        if (granularitySectors == 0 || (granularitySectors & (granularitySectors - 1)) != 0)
        {
            throw new ImageCorruptException($"dirty bitmap granularity of {granularitySectors} sectors is not a power of two", "dirty bitmap", offset, path);
        }

        if (l1Size > (data.Length - BitmapHeaderBytes) / sizeof(ulong))
        {
            throw new ImageCorruptException("dirty bitmap L1 table exceeds the feature data", "dirty bitmap", offset, path);
        }

        // The bitmap is serialised in 64-bit words (QEMU's hbitmap), one L1 entry per cluster of them.
        long granularityBytes = (long)granularitySectors * ParallelsLimits.SectorBytes;
        long bits = ((diskSectors * ParallelsLimits.SectorBytes) + granularityBytes - 1) / granularityBytes;
        long serializedBytes = (bits + 63) / 64 * 8;
        long expectedL1 = (serializedBytes + clusterBytes - 1) / clusterBytes;
        if (l1Size != expectedL1)
        {
            throw new ImageCorruptException($"dirty bitmap table size {l1Size} does not match the bitmap and cluster size (expected {expectedL1})", "dirty bitmap", offset, path);
        }

        ulong[] l1 = new ulong[l1Size];
        for (int i = 0; i < l1.Length; i++)
        {
            l1[i] = BinaryPrimitives.ReadUInt64LittleEndian(data[(BitmapHeaderBytes + (i * sizeof(ulong)))..]);
            if (l1[i] > 1 && (l1[i] > (ulong)(fileLength / ParallelsLimits.SectorBytes) || (long)l1[i] * ParallelsLimits.SectorBytes > fileLength - clusterBytes))
            {
                throw new ImageCorruptException($"dirty bitmap L1 entry {i} (sector {l1[i]}) lies past the end of the file", "dirty bitmap", offset, path);
            }
        }

        return new ParallelsDirtyBitmap(id.ToString(), granularityBytes, l1);
    }
}

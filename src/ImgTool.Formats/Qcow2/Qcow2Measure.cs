using System.Numerics;
using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Options;
using ImgTool.Formats.Luks;

namespace ImgTool.Formats.Qcow2;

/// <summary>What `measure -O qcow2` needs to know about the target: its cluster size and whether every data cluster
/// counts as required (a backing file, or full/falloc preallocation), and the size of a fully allocated image.</summary>
/// <param name="AlignedSizeBytes">The virtual size rounded up to whole clusters.</param>
/// <param name="CountsEveryCluster">Every data cluster is required whatever the source holds: with a backing file QEMU
/// cannot tell what the new image shares with it, and full/falloc preallocation allocates everything.</param>
/// <param name="FullyPreallocated">preallocation=full or falloc.</param>
public sealed record Qcow2MeasureLayout(long ClusterSizeBytes, int Version, long AlignedSizeBytes, bool HasBackingFile, bool FullyPreallocated, long FullyAllocatedBytes)
{
    /// <summary>QEMU's required size: the fully allocated size less the data clusters not needed.</summary>
    public long RequiredBytes(long dataBytes) =>
        FullyAllocatedBytes - AlignedSizeBytes + (FullyPreallocated ? AlignedSizeBytes : dataBytes);
}

/// <summary>
/// qemu-img measure for qcow2 targets, as QEMU 7.2's qcow2_measure (block/qcow2.c) computes it: the metadata of a fully
/// allocated image (header cluster, L2 and L1 tables, refcount table and blocks found as a fixed point), plus a LUKS
/// header rounded to clusters, plus the data clusters the source holds. Its figures are estimates QEMU documents as
/// such (compression is not counted), and imgtool gives the same numbers so that scripts sizing volumes agree.
/// </summary>
public static class Qcow2Measure
{
    private const int L1EntryBytes = 8;
    private const int RefcountTableEntryBytes = 8;
    private const int BitmapTableEntryBytes = 8;
    private const int BitmapDirectoryEntryBytes = 24;

    /// <summary>Parses the -o options qcow2_measure looks at (compat, cluster_size, refcount_bits, extended_l2,
    /// preallocation, backing_file, encrypt.*) and computes the fully allocated size for <paramref name="virtualSizeBytes"/>.</summary>
    public static Qcow2MeasureLayout Layout(ImageOptions options, long virtualSizeBytes, IReadOnlyDictionary<string, byte[]>? secrets)
    {
        bool extendedL2 = options.GetBool("extended_l2") ?? false;
        long clusterSize = options.GetSize("cluster_size") ?? 65536;
        if (clusterSize is < 512 or > 2 << 20 || !BitOperations.IsPow2(clusterSize))
        {
            throw new InvalidOptionException("Cluster size must be a power of two between 512 and 2048k");
        }

        if (extendedL2 && clusterSize < 16384)
        {
            throw new InvalidOptionException("Extended L2 entries are only supported with cluster sizes of at least 16384 bytes");
        }

        int version = (options.GetString("compat") ?? "1.1") switch
        {
            "0.10" or "v2" => 2,
            "1.1" or "v3" => 3,
            var other => throw new InvalidOptionException($"Invalid compatibility level: '{other}'"),
        };
        long refcountBits = options.GetNumber("refcount_bits") ?? 16;
        if (refcountBits is < 1 or > 64 || !BitOperations.IsPow2(refcountBits))
        {
            throw new InvalidOptionException("Refcount width must be a power of two and may not exceed 64 bits");
        }

        if (version == 2 && refcountBits != 16)
        {
            throw new InvalidOptionException("Different refcount widths than 16 bits require compatibility level 1.1 or above (use compat=1.1 or greater)");
        }

        string preallocation = options.GetString("preallocation") ?? "off";
        if (preallocation is not ("off" or "metadata" or "falloc" or "full"))
        {
            throw new InvalidOptionException($"invalid parameter value: {preallocation}");
        }

        long luksBytes = 0;
        if (options.GetString("encrypt.format") == "luks")
        {
            luksBytes = RoundUp(LuksMeasure.PayloadOffsetBytes(options, "encrypt.", secrets), clusterSize);
        }

        if (virtualSizeBytes < 0 || virtualSizeBytes > Qcow2Limits.MaxVirtualSizeBytes)
        {
            throw new InvalidOptionException("The image size is too large (try using a larger cluster size)");
        }

        long aligned = RoundUp(virtualSizeBytes, clusterSize);
        int l2EntryBytes = extendedL2 ? 16 : 8;
        long l2Tables = DivRoundUp(aligned / clusterSize, clusterSize / l2EntryBytes);
        if (l2Tables * L1EntryBytes > Qcow2Limits.MaxL1Bytes)
        {
            throw new InvalidOptionException("The image size is too large (try using a larger cluster size)");
        }

        long fully = luksBytes + PreallocatedSizeBytes(aligned, clusterSize, BitOperations.Log2((ulong)refcountBits), l2EntryBytes);
        return new Qcow2MeasureLayout(clusterSize, version, aligned, options.GetString("backing_file") is not null, preallocation is "full" or "falloc", fully);
    }

    /// <summary>The "bitmaps" figure: room for every persistent bitmap of a qcow2 v3 source, each as if fully allocated,
    /// with its table and directory entry (qcow2_get_persistent_dirty_bitmap_size). Null when the source cannot hold
    /// persistent bitmaps (not qcow2, or qcow2 v2), when qemu-img prints no figure.</summary>
    public static long? PersistentBitmapsBytes(IImage source, long clusterSizeBytes)
    {
        if (source is not Qcow2Image { Header.Version: >= 3 } qcow2)
        {
            return null;
        }

        long total = 0;
        long directory = 0;
        foreach (Qcow2Bitmap bitmap in qcow2.Bitmaps)
        {
            long bits = DivRoundUp(source.SizeBytes, 1L << bitmap.GranularityBits);
            long clusters = DivRoundUp(DivRoundUp(bits, 8), clusterSizeBytes);
            total += clusters * clusterSizeBytes;
            total += RoundUp(clusters * BitmapTableEntryBytes, clusterSizeBytes);
            directory += RoundUp(BitmapDirectoryEntryBytes + Encoding.UTF8.GetByteCount(bitmap.Name), 8);
        }

        return total + RoundUp(directory, clusterSizeBytes);
    }

    /// <summary>qcow2_calc_prealloc_size: header cluster, L2 tables for every cluster, the L1 table, refcounts, data.</summary>
    internal static long PreallocatedSizeBytes(long alignedSizeBytes, long clusterSize, int refcountOrder, int l2EntryBytes)
    {
        long metadata = clusterSize;
        long l2Entries = RoundUp(alignedSizeBytes / clusterSize, clusterSize / l2EntryBytes);
        metadata += l2Entries * l2EntryBytes;
        long l1Entries = RoundUp(l2Entries * l2EntryBytes / clusterSize, clusterSize / L1EntryBytes);
        metadata += l1Entries * L1EntryBytes;
        metadata += RefcountMetadataBytes((metadata + alignedSizeBytes) / clusterSize, clusterSize, refcountOrder);
        return metadata + alignedSizeBytes;
    }

    /// <summary>qcow2_refcount_metadata_size: refcount blocks and table clusters for <paramref name="clusters"/> clusters,
    /// themselves included, found as the fixed point where no more are needed.</summary>
    internal static long RefcountMetadataBytes(long clusters, long clusterSize, int refcountOrder)
    {
        long blocksPerTableCluster = clusterSize / RefcountTableEntryBytes;
        long refcountsPerBlock = clusterSize * 8 / (1L << refcountOrder);
        long table = 0;
        long blocks = 0;
        long total = 0;
        long last;
        do
        {
            last = total;
            blocks = DivRoundUp(clusters + table + blocks, refcountsPerBlock);
            table = DivRoundUp(blocks, blocksPerTableCluster);
            total = clusters + blocks + table;
        }
        while (total != last);

        return (blocks + table) * clusterSize;
    }

    private static long RoundUp(long value, long unit) => DivRoundUp(value, unit) * unit;

    private static long DivRoundUp(long value, long unit) => (value + unit - 1) / unit;
}

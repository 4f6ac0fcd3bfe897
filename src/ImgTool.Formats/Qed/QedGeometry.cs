using System.Numerics;

namespace ImgTool.Formats.Qed;

/// <summary>
/// How a QED image maps guest offsets (qed_spec "Logical offset translation"): | L1 index | L2 index | byte in cluster |,
/// with TABLE_NOFFSETS = table_size * cluster_size / 8 entries per table. Built from a header that
/// <see cref="QedHeaderValidation"/> accepted, so every value here is in range.
/// </summary>
internal sealed class QedGeometry
{
    public QedGeometry(uint clusterSize, uint tableSize, long imageSizeBytes)
    {
        ClusterSize = (int)clusterSize;
        ClusterBits = BitOperations.Log2(clusterSize);
        TableClusters = (int)tableSize;
        TableBytes = (long)clusterSize * tableSize;
        TableEntries = (int)(TableBytes / OffsetTable.EntryBytes);
        L2CoverageBytes = (long)TableEntries << ClusterBits;
        ImageSizeBytes = imageSizeBytes;
        L1EntriesUsed = (int)Math.Max(1, (imageSizeBytes + L2CoverageBytes - 1) / L2CoverageBytes);
    }

    public int ClusterSize { get; }

    public int ClusterBits { get; }

    /// <summary>table_size: clusters per L1 or L2 table.</summary>
    public int TableClusters { get; }

    public long TableBytes { get; }

    /// <summary>TABLE_NOFFSETS: entries in every L1 and L2 table.</summary>
    public int TableEntries { get; }

    /// <summary>Guest bytes one L2 table maps.</summary>
    public long L2CoverageBytes { get; }

    public long ImageSizeBytes { get; }

    /// <summary>The L1 entries that map the virtual disk: the only ones the I/O path looks at.</summary>
    public int L1EntriesUsed { get; }

    /// <summary>The entries of the L2 table at this L1 index that map the virtual disk (all but the last table: every one).</summary>
    public int L2EntriesUsed(int l1Index)
    {
        long start = l1Index * L2CoverageBytes;
        long clusters = (ImageSizeBytes - start + ClusterSize - 1) >> ClusterBits;
        return (int)Math.Clamp(clusters, 1, TableEntries);
    }

    public int L1Index(long guestOffset) => (int)(guestOffset / L2CoverageBytes);

    public int L2Index(long guestOffset) => (int)((guestOffset >> ClusterBits) & (TableEntries - 1));

    public long OffsetInCluster(long offset) => offset & (ClusterSize - 1);

    public long StartOfCluster(long offset) => offset & ~(long)(ClusterSize - 1);

    public long ClustersFor(long bytes) => (bytes + ClusterSize - 1) >> ClusterBits;

    public static bool IsValidClusterSize(ulong clusterSize) =>
        clusterSize is >= QedLimits.MinClusterSize and <= QedLimits.MaxClusterSize && BitOperations.IsPow2(clusterSize);

    public static bool IsValidTableSize(ulong tableSize) =>
        tableSize is >= QedLimits.MinTableSize and <= QedLimits.MaxTableSize && BitOperations.IsPow2(tableSize);

    /// <summary>The spec: image_size &lt;= TABLE_NOFFSETS * TABLE_NOFFSETS * cluster_size (up to 2^80, so computed wide
    /// and clamped to what a long holds).</summary>
    public static long MaxImageSize(uint clusterSize, uint tableSize)
    {
        UInt128 entries = (UInt128)clusterSize * tableSize / OffsetTable.EntryBytes;
        UInt128 max = entries * entries * clusterSize;
        return max > long.MaxValue ? long.MaxValue : (long)max;
    }

    /// <summary>
    /// The same limit as QEMU 7.2 computes it, in 64 bits that wrap: for cluster_size * table_size of 16 MiB and more the
    /// true limit passes 2^64 and QEMU's comes out small or 0, so it refuses to create, and to open, such images. Create
    /// uses this, so that every image we make QEMU can open; open uses the spec's <see cref="MaxImageSize"/>.
    /// </summary>
    public static ulong QemuMaxImageSize(uint clusterSize, uint tableSize)
    {
        ulong entries = (ulong)clusterSize * tableSize / OffsetTable.EntryBytes;
        return unchecked(entries * clusterSize * entries);
    }
}

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// Bounds on values read from a qcow2 file, checked before they size an allocation or a loop.
/// They follow QEMU's implementation limits (block/qcow2.h) so that every image QEMU accepts opens here.
/// </summary>
internal static class Qcow2Limits
{
    /// <summary>512 B clusters: the smallest the spec allows (cluster_bits &gt;= 9).</summary>
    public const int MinClusterBits = 9;

    /// <summary>2 MiB clusters: QEMU's implementation limit.</summary>
    public const int MaxClusterBits = 21;

    /// <summary>Extended L2 entries need clusters of at least 16 KiB (spec, cluster_bits).</summary>
    public const int MinExtendedL2ClusterBits = 14;

    /// <summary>QEMU's QCOW_MAX_L1_SIZE: 32 MiB of L1 table.</summary>
    public const long MaxL1Bytes = 32L << 20;

    /// <summary>QEMU's QCOW_MAX_REFTABLE_SIZE: 8 MiB of refcount table.</summary>
    public const long MaxRefcountTableBytes = 8L << 20;

    /// <summary>The spec: a backing file name is at most 1023 bytes.</summary>
    public const int MaxBackingFileNameBytes = 1023;

    /// <summary>refcount_order may not exceed 6 (64-bit refcounts).</summary>
    public const int MaxRefcountOrder = 6;

    /// <summary>QEMU's QCOW_MAX_SNAPSHOTS.</summary>
    public const int MaxSnapshots = 65536;

    /// <summary>QEMU's QCOW_MAX_SNAPSHOTS_SIZE: 64 MiB of snapshot table.</summary>
    public const long MaxSnapshotTableBytes = 64L << 20;

    /// <summary>Snapshot extra data beyond what we understand is skipped; QEMU caps it at 1 KiB.</summary>
    public const int MaxSnapshotExtraDataBytes = 1024;

    /// <summary>Header extensions must fit in the first cluster, after the header.</summary>
    public const int MaxHeaderExtensionBytes = 1 << MaxClusterBits;

    /// <summary>Virtual sizes beyond 2^61 bytes cannot be addressed by any L1 table QEMU accepts.</summary>
    public const long MaxVirtualSizeBytes = 1L << 61;

    /// <summary>Host offsets are bits 9-55 of an entry: 64 PiB.</summary>
    public const long MaxHostOffset = (1L << 56) - 1;

    /// <summary>The largest check this build runs: one reference counter (4 bytes) per host cluster, at most 128 MiB of them
    /// (a 2 TiB image file with 64 KiB clusters).</summary>
    public const long MaxCheckClusters = 32L << 20;

    /// <summary>Bytes of L2 tables kept in memory (QEMU's default l2-cache-size on Linux is 32 MiB).</summary>
    public const long L2CacheBytes = 32L << 20;

    /// <summary>Refcount blocks kept in memory: a quarter of the L2 cache, as QEMU's default ratio.</summary>
    public const long RefcountCacheBytes = 8L << 20;
}

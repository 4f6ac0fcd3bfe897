namespace ImgTool.Formats.Qed;

/// <summary>The ranges the QED spec and QEMU's driver allow, and the bounds we put on what a file may make us allocate.</summary>
internal static class QedLimits
{
    /// <summary>The spec: cluster_size is a power of two in [2^12, 2^26].</summary>
    public const uint MinClusterSize = 4096;

    public const uint MaxClusterSize = 64 * 1024 * 1024;

    /// <summary>The spec: table_size (in clusters) is a power of two in [1, 16].</summary>
    public const uint MinTableSize = 1;

    public const uint MaxTableSize = 16;

    /// <summary>QEMU's create defaults (QED_DEFAULT_CLUSTER_SIZE, QED_DEFAULT_TABLE_SIZE).</summary>
    public const uint DefaultClusterSize = 65536;

    public const uint DefaultTableSize = 4;

    /// <summary>Guest sizes are whole 512-byte sectors (the spec: image_size "must be a multiple of 512 bytes").</summary>
    public const int SectorBytes = 512;

    /// <summary>QEMU reads the backing name into a PATH_MAX (4096) buffer with room for the NUL, so it refuses longer ones.</summary>
    public const int MaxBackingFileNameBytes = 4095;

    /// <summary>
    /// The most table entries we hold in memory for one table: 32 MiB. A table can be 16 clusters of 64 MiB (1 GiB);
    /// we keep only the entries that map the virtual disk, so only a disk of more than 4 Mi clusters whose tables are
    /// that large meets this bound.
    /// </summary>
    public const int MaxTableEntriesInMemory = 4 * 1024 * 1024;

    /// <summary>L2 tables kept in memory: 32 MiB of entries, the least recently used dropped first.</summary>
    public const long L2CacheBytes = 32L * 1024 * 1024;

    /// <summary>Check keeps one bit per host cluster: 2^30 clusters (128 MiB of bits) at most.</summary>
    public const long MaxCheckedClusters = 1L << 30;

    /// <summary>Tables are read and written by check in chunks of this many entries, so a 1 GiB table costs 1 MiB.</summary>
    public const int CheckChunkEntries = 128 * 1024;
}

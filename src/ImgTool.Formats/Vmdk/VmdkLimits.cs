namespace ImgTool.Formats.Vmdk;

/// <summary>Bounds on what a VMDK file may ask for before it sizes an allocation or a loop.</summary>
internal static class VmdkLimits
{
    public const int SectorBytes = 512;

    /// <summary>Descriptors are read up to this size (QEMU reads at most 1 MiB - 1).</summary>
    public const int MaxDescriptorBytes = (1 << 20) - 1;

    /// <summary>Largest grain accepted: 16 MiB (QEMU allows 1 GiB, which no real image uses; VMware uses 64 KiB).</summary>
    public const long MaxGrainSectors = 32768;

    /// <summary>Grain table entries per table: VMware and QEMU use 512 and QEMU refuses more.</summary>
    public const uint MaxGtesPerGt = 512;

    /// <summary>Grain directory entries (QEMU's 32 Mi entry limit on its L1 table).</summary>
    public const long MaxGrainDirectoryEntries = 32L * 1024 * 1024;

    /// <summary>Extents named by one descriptor (a 64 TiB twoGbMaxExtent disk has 32768).</summary>
    public const int MaxExtents = 65536;

    /// <summary>Largest virtual disk: 64 TiB, the seSparse maximum; hosted sparse extents hold less (2 TiB).</summary>
    public const long MaxCapacitySectors = (64L << 40) / SectorBytes;

    /// <summary>Grain table entries are 32-bit sector numbers, so a sparse extent file ends before 2 TiB.</summary>
    public const long MaxSparseFileSectors = 1L << 32;

    /// <summary>The split size of twoGbMaxExtent subformats (QEMU and VMware use exactly 2 GiB).</summary>
    public const long SplitExtentBytes = 0x80000000;

    /// <summary>Grain tables kept in memory per extent (QEMU keeps 16); read again from the file when evicted.</summary>
    public const int MaxGrainTableCacheBytes = 16 << 20;

    /// <summary>Length of one text line in a descriptor; longer lines are hostile.</summary>
    public const int MaxDescriptorLineChars = 4096;
}

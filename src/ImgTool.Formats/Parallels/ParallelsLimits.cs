namespace ImgTool.Formats.Parallels;

/// <summary>What a Parallels header may ask for before it sizes an allocation or a loop.</summary>
internal static class ParallelsLimits
{
    public const int SectorBytes = 512;

    /// <summary>QEMU's limit (INT32_MAX / 513 sectors, just under 2 GiB clusters); we keep clusters at 256 MiB or less,
    /// since the format extension is one cluster read whole.</summary>
    public const uint MaxClusterSectors = (256 << 20) / SectorBytes;

    /// <summary>QEMU's limit (INT_MAX / 4 entries); the BAT must also fit in the file, which bounds the allocation.</summary>
    public const uint MaxBatEntries = int.MaxValue / sizeof(uint);

    /// <summary>2^53 sectors: keeps byte sizes far below long.MaxValue.</summary>
    public const ulong MaxSectorCount = 1UL << 53;

    /// <summary>Dirty bitmaps read from the format extension, and their L1 tables.</summary>
    public const int MaxDirtyBitmaps = 64;
}

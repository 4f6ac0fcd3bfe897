namespace ImgTool.Formats.Bochs;

/// <summary>What a Bochs header may ask for before it sizes an allocation or a loop.</summary>
internal static class BochsLimits
{
    public const int SectorBytes = 512;

    /// <summary>QEMU's limit: 1 M catalog entries, what the largest image bximage makes needs (~8 TB).</summary>
    public const uint MaxCatalogEntries = 0x100000;

    /// <summary>QEMU's limits on the extent size: 512 B to 8 MiB, a power of two.</summary>
    public const uint MinExtentBytes = SectorBytes;
    public const uint MaxExtentBytes = 0x800000;

    /// <summary>One bit per sector of the largest extent, rounded to sectors, is 2 KiB; more than 1 MiB is nonsense.</summary>
    public const uint MaxBitmapBytes = 1 << 20;

    /// <summary>Extent bitmaps kept in memory.</summary>
    public const long CacheBytes = 1 << 20;
}

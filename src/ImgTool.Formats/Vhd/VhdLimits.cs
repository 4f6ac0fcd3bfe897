namespace ImgTool.Formats.Vhd;

/// <summary>Bounds every value read from a VHD file is checked against before it sizes anything.</summary>
internal static class VhdLimits
{
    public const int SectorBytes = 512;

    /// <summary>The largest disk qemu creates or opens: 2040 GiB (QEMU's VHD_MAX_SECTORS, 0xff000000 sectors).</summary>
    public const long MaxSectors = 0xff000000L;

    public const long MaxSizeBytes = MaxSectors * SectorBytes;

    /// <summary>65535 x 16 x 255 sectors: the largest CHS geometry; a footer with it is sized by current_size.</summary>
    public const long MaxGeometrySectors = 65535L * 16 * 255;

    /// <summary>The block size qemu and Hyper-V write (2 MiB); the spec allows other powers of two.</summary>
    public const int DefaultBlockBytes = 2 << 20;

    /// <summary>Largest block size accepted on open (qemu takes any power of two; larger blocks than this are unknown in the wild
    /// and would make a single bitmap or block buffer unreasonably large).</summary>
    public const int MaxBlockBytes = 256 << 20;

    /// <summary>Most BAT entries read into memory (64 MiB of table): a 2040 GiB disk needs 1,044,480 entries with 2 MiB
    /// blocks and 16,711,680 with the smallest common block size (128 KiB).</summary>
    public const long MaxBatEntries = 16L << 20;

    /// <summary>Largest parent locator payload read (a path in UTF-16).</summary>
    public const int MaxLocatorBytes = 64 * 1024;

    /// <summary>Bitmaps kept in memory for allocated blocks of differencing or partially written images.</summary>
    public const int BitmapCacheEntries = 4096;
}

namespace ImgTool.Formats.Dmg;

/// <summary>What a DMG trailer and its block tables may ask for before they size an allocation or a loop.</summary>
internal static class DmgLimits
{
    public const int SectorBytes = 512;

    /// <summary>QEMU's limits on one chunk: 64 MiB stored, 64 MiB decompressed (a chunk is decompressed whole).
    /// Zero and ignore chunks store nothing, so they may be longer.</summary>
    public const long MaxChunkBytes = 64 << 20;
    public const long MaxChunkSectors = MaxChunkBytes / SectorBytes;

    /// <summary>QEMU's cap on the XML property list (a large real image has about 1 MiB).</summary>
    public const long MaxPlistBytes = 16 << 20;

    /// <summary>A resource fork is read one resource at a time; none is larger than the plist cap.</summary>
    public const long MaxResourceBytes = MaxPlistBytes;

    /// <summary>Chunks in all block tables together (40 bytes each in the file).</summary>
    public const int MaxChunks = 4 << 20;

    /// <summary>2^53 sectors: keeps byte offsets far below long.MaxValue.</summary>
    public const ulong MaxSectorCount = 1UL << 53;

    /// <summary>Decompressed chunks kept in memory (at least one is, whatever its size).</summary>
    public const long CacheBytes = 16 << 20;
}

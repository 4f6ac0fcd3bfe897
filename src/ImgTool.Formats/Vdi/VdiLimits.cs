namespace ImgTool.Formats.Vdi;

/// <summary>Bounds every value read from a VDI file is checked against before it sizes an allocation or a loop.</summary>
internal static class VdiLimits
{
    /// <summary>VDI addresses the disk in 512-byte sectors; the header's sector size must say so (QEMU refuses anything else).</summary>
    public const int SectorBytes = 512;

    /// <summary>The block size QEMU and VirtualBox write (VirtualBox's VDI_IMAGE_DEFAULT_BLOCK_SIZE); QEMU opens no other.</summary>
    public const int DefaultBlockBytes = 1 << 20;

    /// <summary>Smallest block size accepted on open: one sector.</summary>
    public const int MinBlockBytes = SectorBytes;

    /// <summary>Largest block size accepted on open. VirtualBox takes any power of two (AllocationBlockSize); blocks larger
    /// than this are unknown in the wild, and a block is the unit a partial write of a differencing image copies.</summary>
    public const int MaxBlockBytes = 64 << 20;

    /// <summary>Most block map entries read into memory: 256 MiB of map, a 64 TiB disk with 1 MiB blocks. The map must also
    /// fit in the file, so a small hostile file cannot make us allocate this much.</summary>
    public const long MaxBlockMapEntries = 64L << 20;

    /// <summary>The largest disk imgtool creates: what the block map limit addresses with the default block size.</summary>
    public const long MaxCreateSizeBytes = MaxBlockMapEntries * DefaultBlockBytes;

    /// <summary>Most files looked at when searching a folder for a differencing image's parent by UUID.</summary>
    public const int MaxParentSearchFiles = 10_000;

    /// <summary>The unit block copies (differencing writes, check repairs) move data in, so memory stays bounded whatever the block size.</summary>
    public const int CopyChunkBytes = 1 << 20;
}

namespace ImgTool.Formats.Cloop;

/// <summary>What a cloop header may ask for before it sizes an allocation or a loop.</summary>
internal static class CloopLimits
{
    public const int SectorBytes = 512;

    /// <summary>QEMU's limit on the (uncompressed) block size, since a block is decompressed whole.</summary>
    public const uint MaxBlockBytes = 64 << 20;

    /// <summary>A compressed block may be larger than its data when compression did poorly, but not twice the largest block
    /// (QEMU's limit).</summary>
    public const long MaxCompressedBlockBytes = 2L * MaxBlockBytes;

    /// <summary>QEMU's limit on the offsets table (512 MiB covers 16 TB at 256 KiB blocks); it must also fit in the file.</summary>
    public const long MaxOffsetsBytes = 512 << 20;

    /// <summary>Decompressed blocks kept in memory (at least one is, whatever its size).</summary>
    public const long CacheBytes = 8 << 20;
}

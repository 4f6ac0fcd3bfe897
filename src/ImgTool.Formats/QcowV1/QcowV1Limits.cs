namespace ImgTool.Formats.QcowV1;

/// <summary>What a qcow v1 header may ask for before it sizes an allocation or a loop.</summary>
internal static class QcowV1Limits
{
    public const int MinClusterBits = 9;
    public const int MaxClusterBits = 16;

    /// <summary>l2_bits counts 8-byte entries: 512 B to 64 KiB tables, as QEMU allows.</summary>
    public const int MinL2Bits = 9 - 3;
    public const int MaxL2Bits = 16 - 3;

    /// <summary>32 MiB of L1 table (4 M entries) covers 2^22 * 2^13 * 2^16 bytes, far beyond any real qcow image.</summary>
    public const int MaxL1Bytes = 32 << 20;

    /// <summary>The largest virtual size accepted (2^62): keeps every sum of offsets below long.MaxValue.</summary>
    public const long MaxSizeBytes = 1L << 62;

    /// <summary>QEMU stores at most 1023 bytes of backing file name.</summary>
    public const int MaxBackingFileNameBytes = 1023;

    /// <summary>Decompressed clusters and L2 tables kept in memory.</summary>
    public const long CacheBytes = 1 << 20;
}

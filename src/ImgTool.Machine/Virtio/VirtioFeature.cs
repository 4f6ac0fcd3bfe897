namespace ImgTool.Machine.Virtio;

/// <summary>Feature bit numbers (virtio 1.1: 6 reserved bits, 5.2.3 block device bits).</summary>
internal static class VirtioFeature
{
    // Block device (5.2.3).
    public const int BlkSizeMax = 1, BlkSegMax = 2, BlkGeometry = 4, BlkReadOnly = 5, BlkBlockSize = 6,
        BlkFlush = 9, BlkTopology = 10, BlkConfigWce = 11;

    // Device-independent (6).
    public const int RingIndirectDesc = 28, RingEventIdx = 29, Version1 = 32;

    /// <summary>The legacy interface carries only feature bits 0-31 (4.1.4.8).</summary>
    public const int LegacyFeatureBits = 32;

    public static ulong Bit(int feature) => 1ul << feature;

    public static bool Has(ulong features, int feature) => (features & Bit(feature)) != 0;
}

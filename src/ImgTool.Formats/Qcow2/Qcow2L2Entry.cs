namespace ImgTool.Formats.Qcow2;

/// <summary>L1 and L2 entry bits (docs/interop/qcow2.txt, "Cluster mapping" and "Extended L2 Entries").</summary>
internal static class Qcow2L2Entry
{
    /// <summary>Bit 63: the cluster's refcount is exactly one, so it may be written in place.</summary>
    public const ulong Copied = 1UL << 63;

    /// <summary>Bit 62: a compressed cluster descriptor.</summary>
    public const ulong Compressed = 1UL << 62;

    /// <summary>Bit 0 of a standard descriptor (v3, not extended): the cluster reads as zeros.</summary>
    public const ulong Zero = 1;

    /// <summary>Bits 9-55: the host offset of an L2 table, refcount block or standard cluster.</summary>
    public const ulong OffsetMask = 0x00FF_FFFF_FFFF_FE00UL;

    /// <summary>Bits an L1 entry may have set besides its offset.</summary>
    public const ulong L1ReservedMask = ~(OffsetMask | Copied);

    /// <summary>Extended L2: the "reads as zeros" half of the subcluster bitmap.</summary>
    public const int SubclusterZeroShift = 32;

    public const int SubclustersPerCluster = 32;

    public const ulong AllSubclusters = 0xFFFF_FFFFUL;

    /// <summary>x = 62 - (cluster_bits - 8): where the sector count of a compressed descriptor starts.</summary>
    public static int CompressedSizeShift(int clusterBits) => 62 - (clusterBits - 8);

    public static long CompressedHostOffset(ulong entry, int clusterBits) =>
        (long)(entry & ((1UL << CompressedSizeShift(clusterBits)) - 1));

    /// <summary>Bytes from the host offset to the end of the last sector the compressed data uses.</summary>
    public static int CompressedSpanBytes(ulong entry, int clusterBits)
    {
        int shift = CompressedSizeShift(clusterBits);
        ulong sectors = ((entry >> shift) & ((1UL << (clusterBits - 8)) - 1)) + 1;
        long offset = CompressedHostOffset(entry, clusterBits);
        return (int)((long)(sectors * 512) - (offset & 511));
    }

    /// <summary>The descriptor for compressed data of <paramref name="lengthBytes"/> at <paramref name="hostOffset"/>.</summary>
    public static ulong MakeCompressed(long hostOffset, int lengthBytes, int clusterBits)
    {
        ulong additionalSectors = (ulong)(((hostOffset + lengthBytes - 1) >> 9) - (hostOffset >> 9));
        return Compressed | (additionalSectors << CompressedSizeShift(clusterBits)) | (ulong)hostOffset;
    }
}

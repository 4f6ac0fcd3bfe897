namespace ImgTool.Formats.Vhdx;

/// <summary>Payload block states (spec 3.4.1) and sector bitmap block states (spec 3.4.2).</summary>
internal enum VhdxBlockState
{
    NotPresent = 0,
    Undefined = 1,
    Zero = 2,
    Unmapped = 3,

    /// <summary>The value drafts of the spec (v0.95) and QEMU use for UNMAPPED; read the same way.</summary>
    UnmappedV095 = 5,
    FullyPresent = 6,
    PartiallyPresent = 7,
}

/// <summary>
/// The geometry of the BAT (spec 3.4): payload entries interleaved with one sector bitmap entry
/// per chunk, a chunk being the payload blocks whose sectors one 1 MiB bitmap block covers
/// (2^23 sectors). A BAT entry holds the state in bits 0-2 and the file offset in MiB in bits 20-63.
/// </summary>
internal sealed class VhdxBatGeometry
{
    public const int EntryBytes = 8;
    public const long SectorBitmapBlockBytes = VhdxLimits.MiB;
    public const long SectorsPerBitmapBlock = 1L << 23;
    private const int OffsetShift = 20;
    private const ulong StateMask = 7;

    public VhdxBatGeometry(long virtualSizeBytes, long blockSizeBytes, int logicalSectorBytes, bool hasParent)
    {
        VirtualSizeBytes = virtualSizeBytes;
        BlockSizeBytes = blockSizeBytes;
        LogicalSectorBytes = logicalSectorBytes;
        HasParent = hasParent;
        ChunkRatio = SectorsPerBitmapBlock * logicalSectorBytes / blockSizeBytes;
        SectorsPerBlock = blockSizeBytes / logicalSectorBytes;
        DataBlocks = (virtualSizeBytes + blockSizeBytes - 1) / blockSizeBytes;
        BitmapBlocks = (DataBlocks + ChunkRatio - 1) / ChunkRatio;
        TotalEntries = hasParent
            ? BitmapBlocks * (ChunkRatio + 1)
            : DataBlocks == 0 ? 0 : DataBlocks + ((DataBlocks - 1) / ChunkRatio);
    }

    public long VirtualSizeBytes { get; }

    public long BlockSizeBytes { get; }

    public int LogicalSectorBytes { get; }

    public bool HasParent { get; }

    /// <summary>Payload blocks per sector bitmap block.</summary>
    public long ChunkRatio { get; }

    public long SectorsPerBlock { get; }

    public long DataBlocks { get; }

    public long BitmapBlocks { get; }

    public long TotalEntries { get; }

    public long BatBytes => TotalEntries * EntryBytes;

    public long PayloadIndex(long block) => block + (block / ChunkRatio);

    public long BitmapIndex(long chunk) => (chunk * (ChunkRatio + 1)) + ChunkRatio;

    public static VhdxBlockState StateOf(ulong entry) => (VhdxBlockState)(entry & StateMask);

    public static long OffsetOf(ulong entry) => (long)(entry >> OffsetShift) << OffsetShift;

    public static ulong Entry(VhdxBlockState state, long fileOffsetBytes) =>
        ((ulong)fileOffsetBytes >> OffsetShift << OffsetShift) | (ulong)state;
}

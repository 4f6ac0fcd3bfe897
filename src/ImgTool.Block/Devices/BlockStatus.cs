namespace ImgTool.Block.Devices;

public enum BlockStatusKind
{
    /// <summary>The range holds data stored in this image.</summary>
    Data,

    /// <summary>The range reads as zeros and this image says so (a hole, a zero cluster).</summary>
    Zero,

    /// <summary>This image does not describe the range: reads fall through to the backing device.</summary>
    Unallocated,
}

/// <summary>One extent of block status.</summary>
/// <param name="Kind">What the range holds.</param>
/// <param name="LengthBytes">How far the extent reaches from the queried offset.</param>
/// <param name="HostOffsetBytes">Where the range starts in the host file, or -1 when it has no single place there.</param>
/// <param name="Depth">The layer of the backing chain that answered: 0 is the image itself.</param>
/// <param name="Allocated">True when the range is allocated in the host file (QEMU's "present" for a top layer).</param>
/// <param name="HostFileName">The file <paramref name="HostOffsetBytes"/> refers to when it is not the image's own
/// host file (a VMDK extent file), as `map` names it; null for the image's file.</param>
/// <param name="DataIsHostHole">For a <see cref="BlockStatusKind.Data"/> extent: its host range is a hole in the host
/// file, so the data reads as zeros (QEMU's BDRV_BLOCK_DATA together with BDRV_BLOCK_ZERO, which `map` prints as
/// "zero": true, "data": true). Set only where QEMU looks through to the file (see <see cref="HostHoles"/>).</param>
public readonly record struct BlockStatus(BlockStatusKind Kind, long LengthBytes, long HostOffsetBytes = -1, int Depth = 0, bool Allocated = true, string? HostFileName = null, bool DataIsHostHole = false)
{
    public bool IsData => Kind == BlockStatusKind.Data;

    /// <summary>The range is known to read as zeros: a zero extent, or data stored in a hole of its host file.</summary>
    public bool ReadsAsZero => Kind == BlockStatusKind.Zero || (Kind == BlockStatusKind.Data && DataIsHostHole);
}

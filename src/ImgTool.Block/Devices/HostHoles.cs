using ImgTool.Block.Host;

namespace ImgTool.Block.Devices;

/// <summary>
/// QEMU's block-status recursion (BDRV_BLOCK_RECURSE): for data a format stores at a known place in a host
/// file, the host file is asked about that range as well; a hole there reads as zeros, so the data is
/// reported as zero too, and the extent is cut where the host file changes between data and hole. QEMU
/// does this for fixed VHDs, VMDK flat extents and qcow2 images with preallocated metadata.
/// </summary>
public static class HostHoles
{
    /// <summary>Refines a data extent at <see cref="BlockStatus.HostOffsetBytes"/> in <paramref name="file"/>; other
    /// extents are returned unchanged.</summary>
    public static BlockStatus Refine(BlockStatus status, IHostFile file)
    {
        if (status.Kind != BlockStatusKind.Data || status.HostOffsetBytes < 0)
        {
            return status;
        }

        // Past the end of the file, or in a hole running to it, the extent keeps its length (QEMU's EOF rule);
        // GetExtent reports such holes with the whole length asked for.
        HostExtent extent = file.GetExtent(status.HostOffsetBytes, status.LengthBytes);
        return status with
        {
            LengthBytes = Math.Max(1, Math.Min(status.LengthBytes, extent.LengthBytes)),
            DataIsHostHole = !extent.IsData,
        };
    }
}

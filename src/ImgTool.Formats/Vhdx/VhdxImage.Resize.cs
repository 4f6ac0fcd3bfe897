using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vhdx;

/// <summary>
/// Resize, which qemu-img cannot do for VHDX. The BAT region has a fixed length (qemu-img and Hyper-V size it in whole
/// MiB, which maps far more than a small disk needs), so a dynamic disk grows in place while the new BAT fits: the new
/// entries are written as "not present", then the virtual disk size metadata item (one 8-byte field in one sector)
/// says the new size. A shrink marks the entries past the new end "not present" first, then lowers the size. Nothing
/// that an older reader would follow changes before the size does. The opened image keeps its old layout in memory:
/// reopen it to use the new size.
/// </summary>
internal sealed partial class VhdxImage : IResizable
{
    public async ValueTask ResizeAsync(long newSizeBytes, CancellationToken cancellationToken = default)
    {
        if (newSizeBytes <= 0 || newSizeBytes % Geometry.LogicalSectorBytes != 0 || newSizeBytes > VhdxLimits.MaxVirtualSizeBytes)
        {
            throw new InvalidOptionException($"The new size must be a positive multiple of the logical sector size ({Geometry.LogicalSectorBytes}), at most 64 TiB", HostFile.Path);
        }

        if (Geometry.HasParent)
        {
            throw new UnsupportedFeatureException("a differencing VHDX has its parent's size and cannot be resized on its own", HostFile.Path);
        }

        if (Layout.LeaveBlocksAllocated)
        {
            throw new UnsupportedFeatureException("a fixed VHDX cannot be resized in place; convert it to a dynamic VHDX first", HostFile.Path);
        }

        if (IsReadOnly || LogReplayedInMemory)
        {
            throw new UnsupportedFeatureException("the image is open read-only", HostFile.Path);
        }

        var geometry = new VhdxBatGeometry(newSizeBytes, Geometry.BlockSizeBytes, Geometry.LogicalSectorBytes, hasParent: false);
        if (geometry.BatBytes > Layout.BatLengthBytes)
        {
            long room = Layout.BatLengthBytes / VhdxBatGeometry.EntryBytes;
            throw new UnsupportedFeatureException(
                $"the VHDX's BAT region has room for {room} entries (about {room * Geometry.BlockSizeBytes} bytes of disk); convert the image to grow it further",
                HostFile.Path);
        }

        long sizeItemOffset = await VirtualDiskSizeOffsetAsync(cancellationToken).ConfigureAwait(false);
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long first = Math.Min(geometry.TotalEntries, Geometry.TotalEntries);
            long last = Math.Max(geometry.TotalEntries, Geometry.TotalEntries);
            if (last > first)
            {
                await HostFile.WriteAsync(Layout.BatOffsetBytes + (first * VhdxBatGeometry.EntryBytes), new byte[(last - first) * VhdxBatGeometry.EntryBytes], cancellationToken).ConfigureAwait(false);
                await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            byte[] size = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(size, (ulong)newSizeBytes);
            await HostFile.WriteAsync(sizeItemOffset, size, cancellationToken).ConfigureAwait(false);
            await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    private async ValueTask<long> VirtualDiskSizeOffsetAsync(CancellationToken cancellationToken)
    {
        byte[] table = new byte[VhdxMetadataTable.TableBytes];
        await HostFile.ReadAsync(Layout.MetadataOffsetBytes, table, cancellationToken).ConfigureAwait(false);
        VhdxMetadataEntry entry = VhdxMetadataTable.ReadEntries(table, (uint)Layout.MetadataLengthBytes, HostFile.Path)
            .FirstOrDefault(e => e.ItemId == VhdxMetadataTable.VirtualDiskSize);
        if (entry.LengthBytes < 8)
        {
            throw new ImageCorruptException("the virtual disk size metadata item is missing", "metadata table", Layout.MetadataOffsetBytes, HostFile.Path);
        }

        return Layout.MetadataOffsetBytes + entry.OffsetBytes;
    }
}

using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vhd;

/// <summary>
/// Resize, which qemu-img cannot do for VHD. A fixed disk moves its footer to the new end. A dynamic disk grows within
/// the room its block allocation table already has (the BAT is padded to whole sectors, and nothing may lie between it
/// and the first block; qemu-img's layout leaves room for 128 entries per sector, 256 MiB with 2 MiB blocks): the new
/// entries are marked unallocated, then max_table_entries grows, then the footers say the new size. The header and the
/// footers are patched in their raw bytes with fresh checksums, so fields we do not model stay as they were.
/// The size follows the creator's rule (<see cref="VhdGeometry.VirtualSize"/>): a disk sized by CHS keeps that rule
/// when the new size has an exact geometry, and otherwise becomes a current_size disk ("qem2", as force_size makes).
/// The opened image keeps its old layout in memory: reopen it to use the new size.
/// </summary>
internal sealed partial class VhdImage : IResizable
{
    public async ValueTask ResizeAsync(long newSizeBytes, CancellationToken cancellationToken = default)
    {
        if (newSizeBytes % SectorBytes != 0 || newSizeBytes <= 0 || newSizeBytes > VhdLimits.MaxSizeBytes)
        {
            throw new InvalidOptionException($"The new size must be a multiple of {SectorBytes} and at most {VhdLimits.MaxSizeBytes} bytes", _file.Path);
        }

        if (IsDifferencing)
        {
            throw new UnsupportedFeatureException("a differencing VHD has its parent's size and cannot be resized on its own", _file.Path);
        }

        if (IsReadOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", _file.Path);
        }

        byte[] footer = ResizedFooter(newSizeBytes);
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (IsFixed)
            {
                await ResizeFixedAsync(newSizeBytes, footer, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ResizeDynamicAsync(newSizeBytes, footer, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    /// <summary>The footer for the new size: current_size, the geometry, and the creator when the sizing rule must change.</summary>
    private byte[] ResizedFooter(long newSizeBytes)
    {
        byte[] footer = (byte[])_footerBytes.Clone();
        bool sizedByChs = Footer.CreatorApplicationText is "vpc " or "qemu";
        (long chsSize, ushort cylinders, byte heads, byte sectors) = VhdGeometry.ForCreate(newSizeBytes, forceSize: false, _file.Path);
        if (chsSize != newSizeBytes)
        {
            (_, cylinders, heads, sectors) = VhdGeometry.ForCreate(newSizeBytes, forceSize: true, _file.Path);
            if (sizedByChs)
            {
                BinaryPrimitives.WriteUInt32BigEndian(footer.AsSpan(VhdFooter.CreatorApplicationOffset), VhdFooter.FourCc("qem2"));
            }
        }

        BinaryPrimitives.WriteUInt64BigEndian(footer.AsSpan(VhdFooter.CurrentSizeOffset), (ulong)newSizeBytes);
        BinaryPrimitives.WriteUInt16BigEndian(footer.AsSpan(VhdFooter.DiskGeometryOffset), cylinders);
        footer[VhdFooter.DiskGeometryOffset + 2] = heads;
        footer[VhdFooter.DiskGeometryOffset + 3] = sectors;
        BinaryPrimitives.WriteUInt32BigEndian(footer.AsSpan(VhdFooter.ChecksumOffset), VhdFooter.ComputeChecksum(footer.AsSpan(0, VhdFooter.SizeBytes), VhdFooter.ChecksumOffset));
        return footer;
    }

    /// <summary>The footer is written at the new end first, so the file always ends in a valid footer; the old one
    /// (now inside a grown disk) is zeroed afterwards.</summary>
    private async ValueTask ResizeFixedAsync(long newSizeBytes, byte[] footer, CancellationToken cancellationToken)
    {
        long oldSize = SizeBytes;
        if (newSizeBytes > oldSize)
        {
            _file.SetLength(newSizeBytes + VhdFooter.SizeBytes);
            await _file.WriteAsync(newSizeBytes, footer, cancellationToken).ConfigureAwait(false);
            await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
            _file.ZeroRange(oldSize, Math.Min(VhdFooter.SizeBytes, newSizeBytes - oldSize));
        }
        else
        {
            await _file.WriteAsync(newSizeBytes, footer, cancellationToken).ConfigureAwait(false);
            await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
            _file.SetLength(newSizeBytes + VhdFooter.SizeBytes);
        }

        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask ResizeDynamicAsync(long newSizeBytes, byte[] footer, CancellationToken cancellationToken)
    {
        VhdDynamicHeader header = Header!.Value;
        long tableOffset = (long)header.TableOffset;
        long oldEntries = header.MaxTableEntries;
        long newEntries = (newSizeBytes + _blockBytes - 1) / _blockBytes;
        if (newEntries > oldEntries)
        {
            long room = TableRoomEntries(header);
            if (newEntries > room)
            {
                throw new UnsupportedFeatureException(
                    $"the VHD's block allocation table has room for {room} blocks ({room * _blockBytes} bytes); convert the image to grow it further",
                    _file.Path);
            }

            byte[] unallocated = new byte[(newEntries - oldEntries) * 4];
            unallocated.AsSpan().Fill(0xff);
            await _file.WriteAsync(tableOffset + (oldEntries * 4), unallocated, cancellationToken).ConfigureAwait(false);
            byte[] raw = new byte[VhdDynamicHeader.SizeBytes];
            await _file.ReadAsync(VhdFooter.SizeBytes, raw, cancellationToken).ConfigureAwait(false);
            BinaryPrimitives.WriteUInt32BigEndian(raw.AsSpan(VhdDynamicHeader.MaxTableEntriesOffset), (uint)newEntries);
            BinaryPrimitives.WriteUInt32BigEndian(raw.AsSpan(VhdDynamicHeader.ChecksumOffset), VhdFooter.ComputeChecksum(raw, VhdDynamicHeader.ChecksumOffset));
            await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
            await _file.WriteAsync(VhdFooter.SizeBytes, raw, cancellationToken).ConfigureAwait(false);
        }
        else if (newEntries < oldEntries)
        {
            // Blocks past the new end leave the disk; their space stays in the file, as a VHD cannot give it back in place.
            byte[] unallocated = new byte[(oldEntries - newEntries) * 4];
            unallocated.AsSpan().Fill(0xff);
            await _file.WriteAsync(tableOffset + (newEntries * 4), unallocated, cancellationToken).ConfigureAwait(false);
        }

        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
        await _file.WriteAsync(_nextFreeBytes, footer, cancellationToken).ConfigureAwait(false);
        await _file.WriteAsync(0, footer, cancellationToken).ConfigureAwait(false);
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>How many BAT entries fit before the first thing that follows the table: a block, a parent locator's
    /// data, or the footer at the end of the file.</summary>
    private long TableRoomEntries(VhdDynamicHeader header)
    {
        long tableOffset = (long)header.TableOffset;
        long limit = _nextFreeBytes;
        foreach (uint entry in _bat)
        {
            if (entry != Unallocated)
            {
                limit = Math.Min(limit, (long)entry * SectorBytes);
            }
        }

        foreach (VhdParentLocator locator in header.ParentLocators)
        {
            if (!locator.IsEmpty && (long)locator.DataOffset >= tableOffset)
            {
                limit = Math.Min(limit, (long)locator.DataOffset);
            }
        }

        return Math.Min((limit - tableOffset) / 4, VhdLimits.MaxBatEntries);
    }
}

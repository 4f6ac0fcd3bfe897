using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vdi;

/// <summary>
/// Resize, which qemu-img cannot do for VDI. The block map lies between its offset and the data offset, so a disk grows
/// in place while the map has room there (qemu-img's layout rounds the map up to whole sectors, VirtualBox's to 1 MiB).
/// New entries are unallocated (a static image gets preallocated blocks at the end of the file, as static images have
/// every block); the header, written last, says the new size and block count. A shrink lowers only the disk size: the
/// spec needs blocks_in_image * block_size to cover disk_size, not to equal it, so blocks and the count stay as they are
/// and every allocated slot stays referenced. The opened image keeps its old layout in memory: reopen it to use the new size.
/// </summary>
internal sealed partial class VdiImage : IResizable
{
    public async ValueTask ResizeAsync(long newSizeBytes, CancellationToken cancellationToken = default)
    {
        if (newSizeBytes <= 0 || newSizeBytes % VdiLimits.SectorBytes != 0)
        {
            throw new InvalidOptionException($"The new size must be a positive multiple of {VdiLimits.SectorBytes}", _file.Path);
        }

        if (_header.IsDifferencing)
        {
            throw new UnsupportedFeatureException("a differencing VDI has its parent's size and cannot be resized on its own", _file.Path);
        }

        if (IsReadOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", _file.Path);
        }

        long oldBlocks = _header.BlockCount;
        long newBlocks = Math.Max(oldBlocks, (newSizeBytes + _blockBytes - 1) / _blockBytes);
        long room = ((long)_header.DataOffsetBytes - _header.BlockMapOffsetBytes) / 4;
        if (newBlocks > Math.Min(room, VdiLimits.MaxBlockMapEntries))
        {
            throw new UnsupportedFeatureException(
                $"the VDI's block map has room for {room} blocks ({room * _blockBytes} bytes); convert the image to grow it further",
                _file.Path);
        }

        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            uint allocated = _header.BlocksAllocated;
            if (newBlocks > oldBlocks)
            {
                byte[] entries = new byte[(newBlocks - oldBlocks) * 4];
                for (long i = 0; i < newBlocks - oldBlocks; i++)
                {
                    uint entry = _header.IsStatic ? allocated++ : VdiBlockMap.Free;
                    BinaryPrimitives.WriteUInt32LittleEndian(entries.AsSpan((int)(i * 4)), entry);
                }

                if (_header.IsStatic)
                {
                    _file.SetLength(_header.DataOffsetBytes + (allocated * _header.BlockSpanBytes));
                }

                await _file.WriteAsync(_header.BlockMapOffsetBytes + (oldBlocks * 4), entries, cancellationToken).ConfigureAwait(false);
                await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            _header = _header with { DiskSizeBytes = (ulong)newSizeBytes, BlockCount = (uint)newBlocks, BlocksAllocated = allocated };
            await WriteHeaderAsync(renewModification: true, cancellationToken).ConfigureAwait(false);
            await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metadataLock.Release();
        }
    }
}

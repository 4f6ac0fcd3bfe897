using System.Buffers.Binary;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vmdk;

/// <summary>
/// Growing a hosted sparse extent in place. The grain directory is stored in whole sectors, so it has room for up to
/// 128 entries per sector it occupies (one entry maps 512 grains, 32 MiB with 64 KiB grains): new grain tables are
/// appended at the end of the file, zeroed (one for the directory and one for the redundant directory, as QEMU
/// preallocates them at create), then the directories point at them, then the header's capacity says the new size.
/// The opened extent keeps its old directory in memory: the image is reopened to use the new size.
/// </summary>
internal sealed partial class VmdkSparseExtent
{
    public async ValueTask GrowAsync(long newCapacitySectors, CancellationToken cancellationToken)
    {
        if (_readOnly || _header.IsCompressed)
        {
            throw new UnsupportedFeatureException("a streamOptimized (compressed) or read-only VMDK cannot be resized in place; convert it", File.Path);
        }

        long coverageSectors = (long)_header.GrainSectors * _gtesPerGt;
        long newEntries = (newCapacitySectors + coverageSectors - 1) / coverageSectors;
        long roomEntries = RoundUp(_gd.Length * (long)sizeof(uint), VmdkLimits.SectorBytes) / sizeof(uint);
        if (newEntries > roomEntries)
        {
            throw new UnsupportedFeatureException(
                $"the VMDK's grain directory has room for {roomEntries} grain tables ({roomEntries * coverageSectors * VmdkLimits.SectorBytes} bytes); convert the image to grow it further",
                File.Path);
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long added = newEntries - _gd.Length;
            if (added > 0)
            {
                long gtSectors = _gtBytes / VmdkLimits.SectorBytes;
                int copies = _rgd is null ? 1 : 2;
                long first = _nextGrainSector;
                await File.WriteAsync(first * VmdkLimits.SectorBytes, new byte[added * copies * _gtBytes], cancellationToken).ConfigureAwait(false);
                await File.FlushAsync(cancellationToken).ConfigureAwait(false);
                await WriteDirectoryTailAsync(_header.GdOffsetSectors, first, added, gtSectors, cancellationToken).ConfigureAwait(false);
                if (_rgd is not null)
                {
                    await WriteDirectoryTailAsync(_header.RgdOffsetSectors, first + (added * gtSectors), added, gtSectors, cancellationToken).ConfigureAwait(false);
                }

                _nextGrainSector = RoundUp(first + (added * copies * gtSectors), (long)_header.GrainSectors);
                await File.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            byte[] capacity = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(capacity, (ulong)newCapacitySectors);
            await File.WriteAsync(VmdkSparseHeader.CapacityOffset, capacity, cancellationToken).ConfigureAwait(false);
            await File.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Points the directory entries after the current ones at consecutive new grain tables.</summary>
    private async ValueTask WriteDirectoryTailAsync(ulong directorySector, long firstTableSector, long count, long gtSectors, CancellationToken cancellationToken)
    {
        byte[] entries = new byte[count * sizeof(uint)];
        for (long i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(entries.AsSpan((int)(i * sizeof(uint))), (uint)(firstTableSector + (i * gtSectors)));
        }

        await File.WriteAsync(((long)directorySector * VmdkLimits.SectorBytes) + (_gd.Length * (long)sizeof(uint)), entries, cancellationToken).ConfigureAwait(false);
    }
}

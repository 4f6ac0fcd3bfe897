using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vmdk;

/// <summary>
/// Writing a streamOptimized extent the way VMware lays it out for OVA upload and ESXi import (VMware "Virtual Disk
/// Format 1.1", "Stream-Optimized Compressed Sparse Extents"): the header says the grain directory is at the end;
/// grains follow as compressed grain markers in disk order; then a grain table marker and table for each table in
/// use, the grain directory marker and directory, the footer marker and footer, and the end-of-stream marker.
/// Grains can only be appended: a grain once written is not rewritten (as in QEMU).
/// </summary>
internal sealed partial class VmdkSparseExtent
{
    private long _streamEnd = -1;
    private bool _streamDirty;
    private bool _metadataWritten = true;
    private long _pendingGrain = -1;
    private byte[]? _pendingBuffer;

    /// <summary>True when grains can be appended (an empty streamOptimized image opened for writing).</summary>
    public bool CanAppendGrains => _streamEnd >= 0;

    /// <summary>Stores one grain's compressed zlib stream as a grain marker at the end of the stream.</summary>
    public async ValueTask AppendCompressedGrainAsync(long grain, ReadOnlyMemory<byte> compressed, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await AppendUnlockedAsync(grain, compressed, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Writes the tables, directory, footer and end-of-stream marker of a new streamOptimized extent at <paramref name="position"/>.</summary>
    public static async ValueTask<long> WriteStreamMetadataAsync(IHostFile file, long position, VmdkSparseHeader header, uint[] gd, uint[]?[] tables, CancellationToken cancellationToken)
    {
        int gtesPerGt = (int)header.GtesPerGt;
        int tableSectors = (int)RoundUp(gtesPerGt * sizeof(uint), VmdkLimits.SectorBytes) / VmdkLimits.SectorBytes;
        int gdSectors = (int)(RoundUp((long)gd.Length * sizeof(uint), VmdkLimits.SectorBytes) / VmdkLimits.SectorBytes);
        byte[] buffer = new byte[(1 + Math.Max(tableSectors, gdSectors)) * VmdkLimits.SectorBytes];
        for (int gdIndex = 0; gdIndex < gd.Length; gdIndex++)
        {
            uint[]? table = tables[gdIndex];
            if (table is null || Array.TrueForAll(table, e => e == 0))
            {
                gd[gdIndex] = 0;
                continue;
            }

            Array.Clear(buffer);
            VmdkMarker.WriteMetadata(buffer, (ulong)tableSectors, VmdkMarker.GrainTable);
            for (int i = 0; i < table.Length; i++)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(VmdkLimits.SectorBytes + (i * sizeof(uint))), table[i]);
            }

            gd[gdIndex] = (uint)((position / VmdkLimits.SectorBytes) + 1);
            int length = (1 + tableSectors) * VmdkLimits.SectorBytes;
            await file.WriteAsync(position, buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            position += length;
        }

        // The directory may be larger than the table-sized buffer.
        byte[] directory = new byte[(1 + gdSectors) * VmdkLimits.SectorBytes];
        VmdkMarker.WriteMetadata(directory, (ulong)gdSectors, VmdkMarker.GrainDirectory);
        for (int i = 0; i < gd.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(directory.AsSpan(VmdkLimits.SectorBytes + (i * sizeof(uint))), gd[i]);
        }

        ulong gdSector = (ulong)(position / VmdkLimits.SectorBytes) + 1;
        await file.WriteAsync(position, directory, cancellationToken).ConfigureAwait(false);
        position += directory.Length;

        byte[] tail = new byte[3 * VmdkLimits.SectorBytes];
        VmdkMarker.WriteMetadata(tail, 1, VmdkMarker.Footer);
        (header with { GdOffsetSectors = gdSector }).Write(tail.AsSpan(VmdkLimits.SectorBytes));
        VmdkMarker.WriteMetadata(tail.AsSpan(2 * VmdkLimits.SectorBytes), 0, VmdkMarker.EndOfStream);
        await file.WriteAsync(position, tail, cancellationToken).ConfigureAwait(false);
        position += tail.Length;
        file.SetLength(position);
        return position;
    }

    private void BeginStream()
    {
        _streamEnd = (long)_header.OverheadSectors * VmdkLimits.SectorBytes;
        if (_header.DescriptorOffsetSectors != 0)
        {
            _streamEnd = Math.Max(_streamEnd, (long)(_header.DescriptorOffsetSectors + _header.DescriptorSizeSectors) * VmdkLimits.SectorBytes);
        }

        _streamEnd = Math.Max(_streamEnd, VmdkSparseHeader.SizeBytes);
    }

    /// <summary>Uncompressed writes to a streamOptimized extent: whole grains are compressed here; a partial grain is
    /// gathered until it is complete (or the stream is finished), so writes must come in order.</summary>
    private async ValueTask StreamWriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (!CanAppendGrains)
        {
            throw new UnsupportedFeatureException("this streamOptimized image already holds data; it can only be written when new (convert into a new image instead)", File.Path);
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            int done = 0;
            while (done < data.Length)
            {
                long position = offsetBytes + done;
                long grain = position / GrainBytes;
                int inGrain = (int)(position % GrainBytes);
                int piece = (int)Math.Min(data.Length - done, GrainBytes - inGrain);
                if (grain != _pendingGrain)
                {
                    await FlushPendingUnlockedAsync(cancellationToken).ConfigureAwait(false);
                    (VmdkRunKind kind, _) = await EntryUnlockedAsync(grain, cancellationToken).ConfigureAwait(false);
                    if (kind != VmdkRunKind.Unallocated)
                    {
                        throw new UnsupportedFeatureException($"streamOptimized images are written once, in order: grain {grain} is already written", File.Path);
                    }

                    _pendingBuffer ??= new byte[GrainBytes];
                    Array.Clear(_pendingBuffer);
                    _pendingGrain = grain;
                }

                data.Slice(done, piece).CopyTo(_pendingBuffer.AsMemory(inGrain));
                done += piece;
                long grainEnd = Math.Min((grain + 1) * GrainBytes, SizeBytes);
                if (position + piece >= grainEnd)
                {
                    await FlushPendingUnlockedAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    private async ValueTask FlushPendingUnlockedAsync(CancellationToken cancellationToken)
    {
        if (_pendingGrain < 0 || _pendingBuffer is null)
        {
            return;
        }

        long grain = _pendingGrain;
        _pendingGrain = -1;
        byte[] compressed = ArrayPool<byte>.Shared.Rent(VmdkDeflate.MaxCompressedBytes((int)GrainBytes));
        try
        {
            int length = VmdkDeflate.Compress(_pendingBuffer.AsSpan(0, (int)GrainBytes), compressed);
            await AppendUnlockedAsync(grain, compressed.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }

    private async ValueTask AppendUnlockedAsync(long grain, ReadOnlyMemory<byte> compressed, CancellationToken cancellationToken)
    {
        if (!CanAppendGrains)
        {
            throw new UnsupportedFeatureException("this streamOptimized image already holds data; it can only be written when new (convert into a new image instead)", File.Path);
        }

        int gdIndex = (int)(grain / _gtesPerGt);
        uint[] table = _tables[gdIndex] ??= new uint[_gtesPerGt];
        if (table[grain % _gtesPerGt] != 0)
        {
            throw new UnsupportedFeatureException($"streamOptimized images are written once: grain {grain} is already written", File.Path);
        }

        if (_metadataWritten)
        {
            // Appending after the metadata of an earlier flush: drop it; it is written again at the next flush.
            File.SetLength(_streamEnd);
            _metadataWritten = false;
        }

        int markerBytes = (int)RoundUp(VmdkMarker.GrainHeaderBytes + compressed.Length, VmdkLimits.SectorBytes);
        byte[] marker = ArrayPool<byte>.Shared.Rent(markerBytes);
        try
        {
            BinaryPrimitives.WriteUInt64LittleEndian(marker.AsSpan(VmdkMarker.ValueOffset), (ulong)(grain * (long)_header.GrainSectors));
            BinaryPrimitives.WriteUInt32LittleEndian(marker.AsSpan(VmdkMarker.SizeOffset), (uint)compressed.Length);
            compressed.Span.CopyTo(marker.AsSpan(VmdkMarker.GrainHeaderBytes));
            marker.AsSpan(VmdkMarker.GrainHeaderBytes + compressed.Length, markerBytes - VmdkMarker.GrainHeaderBytes - compressed.Length).Clear();
            await File.WriteAsync(_streamEnd, marker.AsMemory(0, markerBytes), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(marker);
        }

        if (_streamEnd / VmdkLimits.SectorBytes >= VmdkLimits.MaxSparseFileSectors)
        {
            throw new UnsupportedFeatureException("the streamOptimized extent is full: grain offsets would exceed 2 TiB", File.Path);
        }

        Volatile.Write(ref table[grain % _gtesPerGt], (uint)(_streamEnd / VmdkLimits.SectorBytes));
        _streamEnd += markerBytes;
        _streamDirty = true;
    }

    /// <summary>Finishes the stream: the pending grain, then tables, directory, footer and end-of-stream marker.</summary>
    private async ValueTask FinishStreamAsync(CancellationToken cancellationToken)
    {
        if (!CanAppendGrains)
        {
            return;
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await FlushPendingUnlockedAsync(cancellationToken).ConfigureAwait(false);
            if (!_streamDirty)
            {
                return;
            }

            await WriteStreamMetadataAsync(File, _streamEnd, _header with { GdOffsetSectors = VmdkSparseHeader.GdAtEnd }, _gd, _tables, cancellationToken).ConfigureAwait(false);
            _metadataWritten = true;
            _streamDirty = false;
        }
        finally
        {
            _lock.Release();
        }
    }
}

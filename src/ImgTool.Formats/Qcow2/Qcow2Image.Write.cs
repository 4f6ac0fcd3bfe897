using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qcow2;

/// <summary>The write path: allocation, copy-on-write, zero clusters, discard and compressed clusters.</summary>
internal sealed partial class Qcow2Image
{
    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await BeforeFirstWriteAsync(cancellationToken).ConfigureAwait(false);
            await MarkDirtyAsync(offsetBytes, buffer.Length, cancellationToken).ConfigureAwait(false);
            InvalidateDecompressed();
            await WriteLockedAsync(offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    private async ValueTask WriteLockedAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            done += await WriteInL2Async(offsetBytes + done, buffer[done..], cancellationToken).ConfigureAwait(false);
        }
    }

    private bool IsWritableInPlace(ulong entry, ulong bitmap, long firstSub, long lastSub)
    {
        if ((entry & (Qcow2L2Entry.Copied | Qcow2L2Entry.Compressed)) != Qcow2L2Entry.Copied || !HasHostCluster(entry))
        {
            return false;
        }

        if (!ExtendedL2)
        {
            return (entry & Qcow2L2Entry.Zero) == 0;
        }

        ulong touched = SubclusterMask(firstSub, lastSub);
        return (bitmap & touched) == touched;
    }

    private static ulong SubclusterMask(long firstSub, long lastSub) =>
        (lastSub - firstSub + 1 >= 32 ? Qcow2L2Entry.AllSubclusters : ((1UL << (int)(lastSub - firstSub + 1)) - 1)) << (int)firstSub;

    /// <summary>Writes the part of a request that one L2 table maps; returns the bytes written.</summary>
    private async ValueTask<int> WriteInL2Async(long offsetBytes, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        long l2Span = ClusterSize << _l2Bits;
        long l1Index = offsetBytes / l2Span;
        long end = Math.Min(offsetBytes + data.Length, (l1Index + 1) * l2Span);
        (byte[] table, long l2Offset) = await GetL2ForWriteAsync(l1Index, cancellationToken).ConfigureAwait(false);
        long position = offsetBytes;
        while (position < end)
        {
            long clusterStart = position & ~(ClusterSize - 1);
            long clusterEnd = clusterStart + ClusterSize;
            long segmentEnd = Math.Min(end, clusterEnd);
            long index = (position >> _clusterBits) & (L2Entries - 1);
            (ulong entry, ulong bitmap) = ReadL2Entry(table, index);
            ReadOnlyMemory<byte> source = data.Slice((int)(position - offsetBytes));

            if (IsWritableInPlace(entry, bitmap, (position - clusterStart) / SubclusterSize, (segmentEnd - 1 - clusterStart) / SubclusterSize))
            {
                // Extend over following clusters that are also in place and contiguous on the host.
                long host = (long)(entry & Qcow2L2Entry.OffsetMask) + (position - clusterStart);
                long runEnd = segmentEnd;
                while (runEnd < end)
                {
                    long nextIndex = (runEnd >> _clusterBits) & (L2Entries - 1);
                    (ulong nextEntry, ulong nextBitmap) = ReadL2Entry(table, nextIndex);
                    long nextEnd = Math.Min(end, runEnd + ClusterSize);
                    if (!IsWritableInPlace(nextEntry, nextBitmap, 0, (nextEnd - 1 - runEnd) / SubclusterSize)
                        || (long)(nextEntry & Qcow2L2Entry.OffsetMask) != host + (runEnd - position))
                    {
                        break;
                    }

                    runEnd = nextEnd;
                }

                await WriteDataAsync(host, source[..(int)(runEnd - position)], cancellationToken).ConfigureAwait(false);
                position = runEnd;
                continue;
            }

            if (position == clusterStart && end >= clusterEnd)
            {
                // Whole clusters that need new host clusters: one contiguous allocation and one write.
                long count = 1;
                while (clusterStart + ((count + 1) * ClusterSize) <= end)
                {
                    (ulong e, ulong b) = ReadL2Entry(table, index + count);
                    if (IsWritableInPlace(e, b, 0, Qcow2L2Entry.SubclustersPerCluster - 1))
                    {
                        break;
                    }

                    count++;
                }

                long host = await AllocateDataClustersAsync(clusterStart, count, cancellationToken).ConfigureAwait(false);
                await WriteDataAsync(host, source[..(int)(count * ClusterSize)], cancellationToken).ConfigureAwait(false);
                ulong[] old = ArrayPool<ulong>.Shared.Rent((int)count);
                try
                {
                    for (long i = 0; i < count; i++)
                    {
                        old[i] = ReadL2Entry(table, index + i).Entry;
                        WriteL2Entry(table, index + i, (ulong)(host + (i * ClusterSize)) | Qcow2L2Entry.Copied, ExtendedL2 ? Qcow2L2Entry.AllSubclusters : 0);
                    }

                    await WriteL2EntriesAsync(table, l2Offset, index, count, cancellationToken).ConfigureAwait(false);
                    for (long i = 0; i < count; i++)
                    {
                        await FreeEntryAsync(old[i], cancellationToken).ConfigureAwait(false);
                    }
                }
                finally
                {
                    ArrayPool<ulong>.Shared.Return(old);
                }

                position = clusterStart + (count * ClusterSize);
                continue;
            }

            await WritePartialClusterAsync(table, l2Offset, index, clusterStart, position, segmentEnd, source, cancellationToken).ConfigureAwait(false);
            position = segmentEnd;
        }

        return (int)(end - offsetBytes);
    }

    /// <summary>A write that covers part of a cluster that cannot be written in place: copy-on-write of the
    /// rest (the whole cluster, or with extended L2 only the partly written subclusters).</summary>
    private async ValueTask WritePartialClusterAsync(byte[] table, long l2Offset, long index, long clusterStart, long start, long end, ReadOnlyMemory<byte> source, CancellationToken cancellationToken)
    {
        (ulong entry, ulong bitmap) = ReadL2Entry(table, index);
        long oldHost = (long)(entry & Qcow2L2Entry.OffsetMask);
        bool compressed = (entry & Qcow2L2Entry.Compressed) != 0;
        bool hasHost = !compressed && HasHostCluster(entry);
        bool ownedNormal = hasHost && (entry & Qcow2L2Entry.Copied) != 0;
        byte[] cluster = ArrayPool<byte>.Shared.Rent((int)ClusterSize);
        try
        {
            ulong newEntry;
            ulong newBitmap = 0;
            if (ExtendedL2 && !compressed && (!hasHost || ownedNormal))
            {
                // Only the subclusters this write touches change; partly written ones are completed from
                // what they read as now (zeros or the backing file).
                long firstSub = (start - clusterStart) / SubclusterSize;
                long lastSub = (end - 1 - clusterStart) / SubclusterSize;
                long spanStart = firstSub * SubclusterSize;
                int spanLength = (int)((lastSub + 1 - firstSub) * SubclusterSize);
                Memory<byte> span = cluster.AsMemory(0, spanLength);
                await ReadLockedClippedAsync(clusterStart + spanStart, span, cancellationToken).ConfigureAwait(false);
                source[..(int)(end - start)].CopyTo(span[(int)(start - clusterStart - spanStart)..]);
                long host = ownedNormal ? oldHost : await AllocateDataClustersAsync(clusterStart, 1, cancellationToken).ConfigureAwait(false);
                await WriteDataAsync(host + spanStart, span, cancellationToken).ConfigureAwait(false);
                ulong touched = SubclusterMask(firstSub, lastSub);
                newBitmap = (bitmap | touched) & ~(touched << Qcow2L2Entry.SubclusterZeroShift);
                newEntry = (ulong)host | Qcow2L2Entry.Copied;
                if (!ownedNormal)
                {
                    // The old entry had no host cluster, so its allocation bits must have been clear.
                    newBitmap &= ~Qcow2L2Entry.AllSubclusters | touched;
                }
            }
            else
            {
                Memory<byte> whole = cluster.AsMemory(0, (int)ClusterSize);
                await ReadLockedClippedAsync(clusterStart, whole, cancellationToken).ConfigureAwait(false);
                source[..(int)(end - start)].CopyTo(whole[(int)(start - clusterStart)..]);
                long host = ownedNormal && !ExtendedL2 && (entry & Qcow2L2Entry.Zero) != 0
                    ? oldHost // a preallocated zero cluster we own: reuse it
                    : await AllocateDataClustersAsync(clusterStart, 1, cancellationToken).ConfigureAwait(false);
                await WriteDataAsync(host, whole, cancellationToken).ConfigureAwait(false);
                newEntry = (ulong)host | Qcow2L2Entry.Copied;
                newBitmap = ExtendedL2 ? Qcow2L2Entry.AllSubclusters : 0;
            }

            WriteL2Entry(table, index, newEntry, newBitmap);
            await WriteL2EntriesAsync(table, l2Offset, index, 1, cancellationToken).ConfigureAwait(false);
            if ((long)(newEntry & Qcow2L2Entry.OffsetMask) != oldHost || compressed)
            {
                await FreeEntryAsync(entry, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(cluster);
        }
    }

    /// <summary>Reads the current content for copy-on-write; what lies past the virtual size reads as zeros.</summary>
    private async ValueTask ReadLockedClippedAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int inside = (int)Math.Clamp(SizeBytes - offsetBytes, 0, buffer.Length);
        await ReadLockedAsync(offsetBytes, buffer[..inside], cancellationToken).ConfigureAwait(false);
        buffer.Span[inside..].Clear();
    }

    /// <summary>Writes guest data at a host offset. An external data file is a raw image of the disk (host = guest,
    /// sized to the disk as QEMU creates it), so what lies past the virtual size is not written there.</summary>
    private ValueTask WriteDataAsync(long host, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (HasExternalDataFile && host + data.Length > SizeBytes)
        {
            data = data[..(int)Math.Clamp(SizeBytes - host, 0, data.Length)];
        }

        return IsEncrypted ? WriteEncryptedAsync(host, data, cancellationToken) : DataFile.WriteAsync(host, data, cancellationToken);
    }

    /// <summary>Host clusters for new guest data: from the refcounts, or with an external data file the guest
    /// cluster's own offset (the spec's fixed host = guest mapping, which is not refcounted).</summary>
    private ValueTask<long> AllocateDataClustersAsync(long guestClusterOffset, long count, CancellationToken cancellationToken) =>
        HasExternalDataFile ? ValueTask.FromResult(guestClusterOffset) : Refcounts.AllocateAsync(count, cancellationToken);

    /// <summary>Drops the reference an L2 entry held: one per host cluster for standard clusters, one per host
    /// cluster the compressed data touches for compressed ones (as QEMU's qcow2_free_any_cluster).</summary>
    private async ValueTask FreeEntryAsync(ulong entry, CancellationToken cancellationToken)
    {
        if (HasExternalDataFile)
        {
            // Clusters in an external data file are not refcounted, and a rewritten guest cluster keeps its
            // host cluster (host = guest), so there is nothing to drop here.
            return;
        }

        if ((entry & Qcow2L2Entry.Compressed) != 0)
        {
            long host = Qcow2L2Entry.CompressedHostOffset(entry, _clusterBits) & ~511L;
            long span = Qcow2L2Entry.CompressedSpanBytes(entry, _clusterBits) + (Qcow2L2Entry.CompressedHostOffset(entry, _clusterBits) & 511);
            for (long cluster = host >> _clusterBits; cluster <= (host + span - 1) >> _clusterBits; cluster++)
            {
                if (await Refcounts.AddAsync(cluster, -1, cancellationToken).ConfigureAwait(false) == 0)
                {
                    ForgetCompressedCursor(cluster);
                }
            }

            return;
        }

        long offset = (long)(entry & Qcow2L2Entry.OffsetMask);
        if (offset != 0)
        {
            ulong left = await Refcounts.AddAsync(offset >> _clusterBits, -1, cancellationToken).ConfigureAwait(false);
            if (left == 0)
            {
                ForgetCompressedCursor(offset >> _clusterBits);
            }

            if (left == 0 && offset + ClusterSize <= HostFile.Length)
            {
                // Give the space back to the host, as QEMU passes discards of freed clusters down.
                HostFile.PunchHole(offset, ClusterSize);
            }
        }
    }

    public async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, lengthBytes);
        await ChangeClustersAsync(offsetBytes, lengthBytes, discard: false, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, lengthBytes);
        await ChangeClustersAsync(offsetBytes, lengthBytes, discard: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Write-zeroes and discard without writing data: whole clusters become zero clusters (v3 flag, or
    /// the extended L2 "reads as zeros" bits) or unallocated when nothing below shows through. Partial
    /// clusters are written as zero data for write-zeroes and left alone for discard (it is a hint).
    /// </summary>
    private async ValueTask ChangeClustersAsync(long offsetBytes, long lengthBytes, bool discard, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await BeforeFirstWriteAsync(cancellationToken).ConfigureAwait(false);
            await MarkDirtyAsync(offsetBytes, lengthBytes, cancellationToken).ConfigureAwait(false);
            InvalidateDecompressed();
            long end = offsetBytes + lengthBytes;
            long position = offsetBytes;
            long l2Span = ClusterSize << _l2Bits;
            while (position < end)
            {
                long clusterStart = position & ~(ClusterSize - 1);
                long clusterEnd = Math.Min(clusterStart + ClusterSize, SizeBytes);
                long segmentEnd = Math.Min(end, clusterEnd);
                bool whole = position == clusterStart && segmentEnd == clusterEnd;
                if (!whole)
                {
                    if (!discard && !await ReadsAsZeroAsync(position, segmentEnd - position, cancellationToken).ConfigureAwait(false))
                    {
                        await WriteZeroDataAsync(position, segmentEnd - position, cancellationToken).ConfigureAwait(false);
                    }

                    position = segmentEnd;
                    continue;
                }

                long l1Index = position / l2Span;
                if (Backing is null && (ulong)L1[l1Index] == 0)
                {
                    // Nothing allocated and nothing below: the whole L2 table's range already reads as zeros.
                    position = Math.Min(end, (l1Index + 1) * l2Span);
                    continue;
                }

                await ZeroWholeClusterAsync(l1Index, position, discard, cancellationToken).ConfigureAwait(false);
                position = segmentEnd;
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    private async ValueTask ZeroWholeClusterAsync(long l1Index, long clusterStart, bool discard, CancellationToken cancellationToken)
    {
        long index = (clusterStart >> _clusterBits) & (L2Entries - 1);
        byte[]? existing = await GetL2Async(l1Index, cancellationToken).ConfigureAwait(false);
        (ulong entry, ulong bitmap) = existing is null ? (0UL, 0UL) : ReadL2Entry(existing, index);
        ulong newEntry;
        ulong newBitmap = 0;
        if (DataFileIsRaw)
        {
            // The data file must read as the disk does: keep the host = guest mapping with QEMU's "zero,
            // allocated" entry, and zero the cluster in the data file itself.
            newEntry = (ulong)clusterStart | Qcow2L2Entry.Copied | (ExtendedL2 ? 0 : Qcow2L2Entry.Zero);
            newBitmap = ExtendedL2 ? Qcow2L2Entry.AllSubclusters << Qcow2L2Entry.SubclusterZeroShift : 0;
        }
        else if (Backing is null || (discard && Header.Version < 3))
        {
            // Unallocated reads as zeros when there is no backing file. A v2 image with a backing file
            // cannot say "zero" in its tables; discard may then let the backing data show through.
            newEntry = 0;
        }
        else if (ExtendedL2)
        {
            newEntry = 0;
            newBitmap = Qcow2L2Entry.AllSubclusters << Qcow2L2Entry.SubclusterZeroShift;
        }
        else if (Header.Version >= 3)
        {
            newEntry = Qcow2L2Entry.Zero;
        }
        else
        {
            await WriteZeroDataAsync(clusterStart, Math.Min(ClusterSize, SizeBytes - clusterStart), cancellationToken).ConfigureAwait(false);
            return;
        }

        if (entry == newEntry && bitmap == newBitmap)
        {
            return;
        }

        long length = Math.Min(ClusterSize, SizeBytes - clusterStart);
        if (DataFileIsRaw)
        {
            if (discard)
            {
                DataFile.PunchHole(clusterStart, length);
            }
            else
            {
                DataFile.ZeroRange(clusterStart, length);
            }
        }

        (byte[] table, long l2Offset) = await GetL2ForWriteAsync(l1Index, cancellationToken).ConfigureAwait(false);
        (entry, _) = ReadL2Entry(table, index);
        WriteL2Entry(table, index, newEntry, newBitmap);
        await WriteL2EntriesAsync(table, l2Offset, index, 1, cancellationToken).ConfigureAwait(false);
        await FreeEntryAsync(entry, cancellationToken).ConfigureAwait(false);
        if (HasExternalDataFile && !DataFileIsRaw && (entry & Qcow2L2Entry.Compressed) == 0 && HasHostCluster(entry) && !HasHostCluster(newEntry))
        {
            // The mapping is gone; give the space back in the data file, as QEMU passes the discard down to it.
            DataFile.PunchHole((long)(entry & Qcow2L2Entry.OffsetMask), length);
        }
    }

    private async ValueTask<bool> ReadsAsZeroAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken)
    {
        Qcow2Extent extent = await ResolveAsync(offsetBytes, lengthBytes, cancellationToken).ConfigureAwait(false);
        return extent.LengthBytes >= lengthBytes
            && (extent.Kind == Qcow2ExtentKind.Zero || (extent.Kind == Qcow2ExtentKind.Unallocated && Backing is null));
    }

    private async ValueTask WriteZeroDataAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken)
    {
        byte[] zeros = ArrayPool<byte>.Shared.Rent((int)lengthBytes);
        try
        {
            Array.Clear(zeros, 0, (int)lengthBytes);
            await WriteLockedAsync(offsetBytes, zeros.AsMemory(0, (int)lengthBytes), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(zeros);
        }
    }

    public int Compress(ReadOnlySpan<byte> unit, Span<byte> destination) =>
        Qcow2Compression.Compress(Header.CompressionType, unit, destination[..Math.Min(destination.Length, MaxCompressedBytes)]);

    public async ValueTask WriteCompressedAsync(long offsetBytes, ReadOnlyMemory<byte> compressed, bool isCompressed, CancellationToken cancellationToken = default)
    {
        if ((offsetBytes & (ClusterSize - 1)) != 0)
        {
            throw new ArgumentException("compressed writes must start at a cluster boundary", nameof(offsetBytes));
        }

        if (HasExternalDataFile)
        {
            throw new UnsupportedFeatureException("compressed clusters are not allowed in an image with an external data file", HostFile.Path);
        }

        if (IsEncrypted)
        {
            throw new UnsupportedFeatureException("compression is not supported with encryption (as in QEMU)", HostFile.Path);
        }

        if (!isCompressed)
        {
            await WriteAsync(offsetBytes, compressed[..(int)Math.Min(compressed.Length, SizeBytes - offsetBytes)], cancellationToken).ConfigureAwait(false);
            return;
        }

        CheckRange(offsetBytes, 1);
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await BeforeFirstWriteAsync(cancellationToken).ConfigureAwait(false);
            await MarkDirtyAsync(offsetBytes, Math.Min(ClusterSize, SizeBytes - offsetBytes), cancellationToken).ConfigureAwait(false);
            InvalidateDecompressed();
            long l1Index = offsetBytes / (ClusterSize << _l2Bits);
            long index = (offsetBytes >> _clusterBits) & (L2Entries - 1);
            (byte[] table, long l2Offset) = await GetL2ForWriteAsync(l1Index, cancellationToken).ConfigureAwait(false);
            ulong old = ReadL2Entry(table, index).Entry;
            long host = await AllocateBytesAsync(compressed.Length, cancellationToken).ConfigureAwait(false);
            await HostFile.WriteAsync(host, compressed, cancellationToken).ConfigureAwait(false);
            WriteL2Entry(table, index, Qcow2L2Entry.MakeCompressed(host, compressed.Length, _clusterBits), 0);
            await WriteL2EntriesAsync(table, l2Offset, index, 1, cancellationToken).ConfigureAwait(false);
            await FreeEntryAsync(old, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>
    /// Byte-granular space for compressed clusters, packed one after another as QEMU's qcow2_alloc_bytes:
    /// each compressed cluster adds one reference to every host cluster it touches.
    /// </summary>
    private async ValueTask<long> AllocateBytesAsync(int length, CancellationToken cancellationToken)
    {
        long host;
        long cursor = _compressedCursor;
        long used = cursor & (ClusterSize - 1);
        ulong cursorRefcount = cursor != 0 && used != 0 ? await Refcounts.GetAsync(cursor >> _clusterBits, cancellationToken).ConfigureAwait(false) : 0;
        if (cursorRefcount != 0 && cursorRefcount < Refcounts.MaxRefcount)
        {
            long room = ClusterSize - used;
            long extra = length <= room ? 0 : ((length - room) + ClusterSize - 1) / ClusterSize;
            bool free = true;
            for (long i = 1; i <= extra && free; i++)
            {
                free = await Refcounts.GetAsync((cursor >> _clusterBits) + i, cancellationToken).ConfigureAwait(false) == 0;
            }

            if (free)
            {
                await Refcounts.AddAsync(cursor >> _clusterBits, 1, cancellationToken).ConfigureAwait(false);
                if (extra > 0)
                {
                    await Refcounts.SetRangeAsync((cursor >> _clusterBits) + 1, extra, 1, cancellationToken).ConfigureAwait(false);
                }

                host = cursor;
                _compressedCursor = cursor + length;
                CheckCompressedOffset(host);
                return host;
            }
        }

        long clusters = (length + ClusterSize - 1) / ClusterSize;
        host = await Refcounts.AllocateAsync(clusters, cancellationToken).ConfigureAwait(false);
        _compressedCursor = host + length;
        CheckCompressedOffset(host);
        return host;
    }

    /// <summary>A freed cluster may be handed out for anything, so compressed data must not be packed into it.</summary>
    private void ForgetCompressedCursor(long cluster)
    {
        if (_compressedCursor != 0 && ((_compressedCursor - 1) >> _clusterBits) == cluster)
        {
            _compressedCursor = 0;
        }
    }

    private void CheckCompressedOffset(long host)
    {
        if (host >= 1L << Qcow2L2Entry.CompressedSizeShift(_clusterBits))
        {
            throw new UnsupportedFeatureException("compressed data would lie beyond the offset a compressed cluster descriptor can address", HostFile.Path);
        }
    }

    /// <summary>Gives every guest cluster a host cluster (preallocation=metadata); returns where data starts in
    /// <see cref="DataFile"/>.</summary>
    public async ValueTask<long> PreallocateMetadataAsync(CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long clusters = (SizeBytes + ClusterSize - 1) / ClusterSize;
            var tables = new (byte[] Table, long Offset)[L1.Length];
            for (long i = 0; i < L1.Length; i++)
            {
                tables[i] = await GetL2ForWriteAsync(i, cancellationToken).ConfigureAwait(false);
            }

            long dataStart = -1;
            long end = 0;
            for (long i = 0; i < L1.Length; i++)
            {
                long count = Math.Min(L2Entries, clusters - (i * L2Entries));
                if (count <= 0)
                {
                    break;
                }

                long host = await AllocateDataClustersAsync(i * L2Entries * ClusterSize, count, cancellationToken).ConfigureAwait(false);
                dataStart = dataStart < 0 ? host : dataStart;
                for (long k = 0; k < count; k++)
                {
                    // Extended L2: the subclusters stay unallocated (as QEMU leaves them), so they read from the
                    // backing file if there is one, else as zeros, until written.
                    WriteL2Entry(tables[i].Table, k, (ulong)(host + (k * ClusterSize)) | Qcow2L2Entry.Copied, 0);
                }

                await WriteL2EntriesAsync(tables[i].Table, tables[i].Offset, 0, count, cancellationToken).ConfigureAwait(false);
                end = host + (count * ClusterSize);
            }

            end = HasExternalDataFile ? SizeBytes : end;
            if (end > DataFile.Length)
            {
                DataFile.SetLength(end);
            }

            return dataStart < 0 ? DataFile.Length : dataStart;
        }
        finally
        {
            _lock.Release();
        }
    }
}

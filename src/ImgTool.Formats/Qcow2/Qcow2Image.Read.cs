using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qcow2;

internal enum Qcow2ExtentKind
{
    Unallocated,
    Zero,
    Data,
    Compressed,
}

/// <summary>A run of guest bytes with one meaning: where Data lives (HostOffset) or the compressed descriptor.
/// Zero and Unallocated runs have a HostOffset too when their cluster has a host cluster (QEMU's "zero, allocated"
/// and, with extended L2, "unallocated, allocated"), which QEMU's block status reports; -1 otherwise.</summary>
internal readonly record struct Qcow2Extent(Qcow2ExtentKind Kind, long LengthBytes, long HostOffset, ulong Descriptor)
{
    /// <summary>Whether <paramref name="next"/>, starting <paramref name="distance"/> bytes after this run, continues it.</summary>
    public bool IsContinuedBy(Qcow2Extent next, long distance) =>
        next.Kind == Kind
        && (HostOffset < 0 ? next.HostOffset < 0 : next.HostOffset == HostOffset + distance);
}

/// <summary>Mapping lookups and the read path.</summary>
internal sealed partial class Qcow2Image
{
    public (ulong Entry, ulong Bitmap) ReadL2Entry(byte[] table, long index)
    {
        int at = (int)(index * _l2EntryBytes);
        ulong entry = BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(at));
        ulong bitmap = _l2EntryBytes == 16 ? BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(at + 8)) : 0;
        return (entry, bitmap);
    }

    public void WriteL2Entry(byte[] table, long index, ulong entry, ulong bitmap)
    {
        int at = (int)(index * _l2EntryBytes);
        BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(at), entry);
        if (_l2EntryBytes == 16)
        {
            BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(at + 8), bitmap);
        }
    }

    /// <summary>Whether a standard (not compressed) L2 entry names a host cluster. Offset 0 normally means it
    /// does not, but with an external data file guest cluster 0 lives at host offset 0; the spec tells the two
    /// apart by bit 63, which every allocated cluster there has (its refcount is implicitly one).</summary>
    public bool HasHostCluster(ulong entry) =>
        (entry & Qcow2L2Entry.OffsetMask) != 0 || (HasExternalDataFile && (entry & Qcow2L2Entry.Copied) != 0);

    /// <summary>The L2 table for an L1 index, or null when unallocated. Caller holds the lock.</summary>
    private async ValueTask<byte[]?> GetL2Async(long l1Index, CancellationToken cancellationToken)
    {
        if (l1Index >= L1.Length)
        {
            return null;
        }

        ulong l1Entry = (ulong)L1[l1Index];
        long l2Offset = (long)(l1Entry & Qcow2L2Entry.OffsetMask);
        if (l2Offset == 0)
        {
            return null;
        }

        if ((l2Offset & (ClusterSize - 1)) != 0 || l2Offset + ClusterSize > HostFile.Length)
        {
            throw new ImageCorruptException($"L2 table offset {l2Offset} (L1 index {l1Index}) is unaligned or beyond the end of the file", "L1 table", Header.L1TableOffset + (l1Index * 8), HostFile.Path);
        }

        return await L2Cache.GetAsync(l2Offset, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The run starting at <paramref name="offsetBytes"/> (at most <paramref name="maxLength"/>, never crossing
    /// an L2 table) that has one meaning. Caller holds the lock.</summary>
    private async ValueTask<Qcow2Extent> ResolveAsync(long offsetBytes, long maxLength, CancellationToken cancellationToken)
    {
        long l2Span = ClusterSize << _l2Bits;
        long l1Index = offsetBytes / l2Span;
        long limit = Math.Min(maxLength, ((l1Index + 1) * l2Span) - offsetBytes);
        byte[]? table = await GetL2Async(l1Index, cancellationToken).ConfigureAwait(false);
        if (table is null)
        {
            return new Qcow2Extent(Qcow2ExtentKind.Unallocated, limit, -1, 0);
        }

        Qcow2Extent first = Classify(table, offsetBytes, out long granuleEnd);
        if (first.Kind == Qcow2ExtentKind.Compressed)
        {
            return first with { LengthBytes = Math.Min(limit, granuleEnd - offsetBytes) };
        }

        long position = granuleEnd;
        long end = offsetBytes + limit;
        while (position < end)
        {
            Qcow2Extent next = Classify(table, position, out long nextEnd);
            if (!first.IsContinuedBy(next, position - offsetBytes))
            {
                break;
            }

            position = nextEnd;
        }

        return first with { LengthBytes = Math.Min(position, end) - offsetBytes };
    }

    /// <summary>What one cluster (or subcluster, with extended L2) holds at a guest offset.</summary>
    private Qcow2Extent Classify(byte[] table, long offsetBytes, out long granuleEnd)
    {
        long index = (offsetBytes >> _clusterBits) & (L2Entries - 1);
        long inCluster = offsetBytes & (ClusterSize - 1);
        long clusterStart = offsetBytes - inCluster;
        (ulong entry, ulong bitmap) = ReadL2Entry(table, index);
        granuleEnd = clusterStart + ClusterSize;
        if ((entry & Qcow2L2Entry.Compressed) != 0)
        {
            if (HasExternalDataFile)
            {
                throw new ImageCorruptException($"cluster at guest offset {clusterStart} is compressed, which an image with an external data file cannot have", "L2 table", clusterStart, HostFile.Path);
            }

            return new Qcow2Extent(Qcow2ExtentKind.Compressed, 0, -1, entry);
        }

        long host = (long)(entry & Qcow2L2Entry.OffsetMask);
        bool hasHost = HasHostCluster(entry);
        if ((host & (ClusterSize - 1)) != 0)
        {
            throw new ImageCorruptException($"cluster at guest offset {clusterStart} maps to unaligned host offset {host}", "L2 table", clusterStart, HostFile.Path);
        }

        if (ExtendedL2)
        {
            long sub = inCluster / SubclusterSize;
            granuleEnd = clusterStart + ((sub + 1) * SubclusterSize);
            if ((bitmap & (1UL << (int)sub)) != 0)
            {
                if (!hasHost)
                {
                    throw new ImageCorruptException($"subcluster at guest offset {offsetBytes} is allocated without a host cluster", "L2 table", clusterStart, HostFile.Path);
                }

                return new Qcow2Extent(Qcow2ExtentKind.Data, 0, host + inCluster, 0);
            }

            long where = hasHost ? host + inCluster : -1;
            return (bitmap & (1UL << (int)(sub + Qcow2L2Entry.SubclusterZeroShift))) != 0
                ? new Qcow2Extent(Qcow2ExtentKind.Zero, 0, where, 0)
                : new Qcow2Extent(Qcow2ExtentKind.Unallocated, 0, where, 0);
        }

        if ((entry & Qcow2L2Entry.Zero) != 0 && Header.Version >= 3)
        {
            // QEMU: a zero cluster with host offset 0 is "zero, plain" even with an external data file.
            return new Qcow2Extent(Qcow2ExtentKind.Zero, 0, host != 0 ? host + inCluster : -1, 0);
        }

        return hasHost
            ? new Qcow2Extent(Qcow2ExtentKind.Data, 0, host + inCluster, 0)
            : new Qcow2Extent(Qcow2ExtentKind.Unallocated, 0, -1, 0);
    }

    public async ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, lengthBytes);
        Qcow2Extent extent;
        bool metadataPreallocated;
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            extent = await ResolveAsync(offsetBytes, lengthBytes, cancellationToken).ConfigureAwait(false);
            while (extent.Kind != Qcow2ExtentKind.Compressed && extent.LengthBytes < lengthBytes)
            {
                // Join runs across L2 tables, so a large query does not stop at every table.
                long next = offsetBytes + extent.LengthBytes;
                Qcow2Extent more = await ResolveAsync(next, lengthBytes - extent.LengthBytes, cancellationToken).ConfigureAwait(false);
                if (!extent.IsContinuedBy(more, extent.LengthBytes))
                {
                    break;
                }

                extent = extent with { LengthBytes = extent.LengthBytes + more.LengthBytes };
            }

            metadataPreallocated = extent.Kind == Qcow2ExtentKind.Data && await HasPreallocatedMetadataAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }

        if (IsEncrypted && extent.Kind is Qcow2ExtentKind.Data or Qcow2ExtentKind.Zero)
        {
            // As QEMU: the host bytes of an encrypted image are not the guest's, so no offset is reported.
            extent = extent with { HostOffset = -1 };
        }

        string? hostFileName = DataFile == HostFile || extent.HostOffset < 0 ? null : DataFile.Path;
        return extent.Kind switch
        {
            // With preallocated metadata QEMU looks through to the file, where unwritten clusters are holes.
            Qcow2ExtentKind.Data when metadataPreallocated => HostHoles.Refine(
                new BlockStatus(BlockStatusKind.Data, extent.LengthBytes, extent.HostOffset, HostFileName: hostFileName), DataFile),
            Qcow2ExtentKind.Data => new BlockStatus(BlockStatusKind.Data, extent.LengthBytes, extent.HostOffset, HostFileName: hostFileName),
            Qcow2ExtentKind.Compressed => new BlockStatus(BlockStatusKind.Data, extent.LengthBytes),
            Qcow2ExtentKind.Zero => new BlockStatus(BlockStatusKind.Zero, extent.LengthBytes, extent.HostOffset, HostFileName: hostFileName),
            _ => new BlockStatus(BlockStatusKind.Unallocated, extent.LengthBytes, extent.HostOffset, Allocated: false, HostFileName: hostFileName),
        };
    }

    /// <summary>
    /// QEMU's qcow2_detect_metadata_preallocation, decided once per open: the image counts as preallocated when
    /// clearly more clusters are in use than the file has allocated on disk (at least 10/9 of them, and 2 more),
    /// as preallocation=metadata leaves data clusters as holes. Unreadable refcounts count as no.
    /// Caller holds the lock.
    /// </summary>
    private async ValueTask<bool> HasPreallocatedMetadataAsync(CancellationToken cancellationToken)
    {
        if (_metadataPreallocated is { } known)
        {
            return known;
        }

        long realClusters = HostFile.AllocatedBytes / ClusterSize;
        long threshold = Math.Max(realClusters * 10 / 9, realClusters + 2);
        long endCluster = (HostFile.Length + ClusterSize - 1) / ClusterSize;
        try
        {
            _metadataPreallocated = await Refcounts.CountInUseAsync(endCluster, threshold, cancellationToken).ConfigureAwait(false) >= threshold;
        }
        catch (ImageCorruptException)
        {
            _metadataPreallocated = false;
        }

        return _metadataPreallocated.Value;
    }

    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        int done = 0;
        while (done < buffer.Length)
        {
            Qcow2Extent extent;
            await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                extent = await ResolveAsync(offsetBytes + done, buffer.Length - done, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _lock.Release();
            }

            await ReadExtentAsync(offsetBytes + done, extent, buffer.Slice(done, (int)extent.LengthBytes), cancellationToken).ConfigureAwait(false);
            done += (int)extent.LengthBytes;
        }
    }

    /// <summary>The read path for callers that already hold the lock (copy-on-write).</summary>
    private async ValueTask ReadLockedAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            Qcow2Extent extent = await ResolveAsync(offsetBytes + done, buffer.Length - done, cancellationToken).ConfigureAwait(false);
            await ReadExtentAsync(offsetBytes + done, extent, buffer.Slice(done, (int)extent.LengthBytes), cancellationToken).ConfigureAwait(false);
            done += (int)extent.LengthBytes;
        }
    }

    private async ValueTask ReadExtentAsync(long guestOffset, Qcow2Extent extent, Memory<byte> part, CancellationToken cancellationToken)
    {
        switch (extent.Kind)
        {
            case Qcow2ExtentKind.Data when IsEncrypted:
                await ReadEncryptedAsync(extent.HostOffset, part, cancellationToken).ConfigureAwait(false);
                break;
            case Qcow2ExtentKind.Data:
                await DataFile.ReadZeroFilledAsync(extent.HostOffset, part, cancellationToken).ConfigureAwait(false);
                break;
            case Qcow2ExtentKind.Zero:
                part.Span.Clear();
                break;
            case Qcow2ExtentKind.Unallocated:
                await ReadBackingAsync(guestOffset, part, cancellationToken).ConfigureAwait(false);
                break;
            case Qcow2ExtentKind.Compressed:
                await ReadCompressedAsync(extent.Descriptor, (int)(guestOffset & (ClusterSize - 1)), part, cancellationToken).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>Unallocated ranges read from the backing file; past its end (or without one) they read as zeros.</summary>
    private ValueTask ReadBackingAsync(long guestOffset, Memory<byte> part, CancellationToken cancellationToken) =>
        BackingRead.ReadOrZeroAsync(Backing, guestOffset, part, cancellationToken);

    private async ValueTask ReadCompressedAsync(ulong descriptor, int offsetInCluster, Memory<byte> part, CancellationToken cancellationToken)
    {
        lock (_decompressedLock)
        {
            if (_decompressedValid && _decompressedDescriptor == descriptor && _decompressed is not null)
            {
                _decompressed.AsSpan(offsetInCluster, part.Length).CopyTo(part.Span);
                return;
            }
        }

        byte[] cluster = ArrayPool<byte>.Shared.Rent((int)ClusterSize);
        try
        {
            await DecompressClusterAsync(descriptor, cluster.AsMemory(0, (int)ClusterSize), cancellationToken).ConfigureAwait(false);
            cluster.AsSpan(offsetInCluster, part.Length).CopyTo(part.Span);
            lock (_decompressedLock)
            {
                _decompressed ??= new byte[ClusterSize];
                cluster.AsSpan(0, (int)ClusterSize).CopyTo(_decompressed);
                _decompressedDescriptor = descriptor;
                _decompressedValid = true;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(cluster);
        }
    }

    public async ValueTask DecompressClusterAsync(ulong descriptor, Memory<byte> cluster, CancellationToken cancellationToken)
    {
        long host = Qcow2L2Entry.CompressedHostOffset(descriptor, _clusterBits);
        int span = Qcow2L2Entry.CompressedSpanBytes(descriptor, _clusterBits);
        if (host + span > HostFile.Length + 512 || host < ClusterSize)
        {
            throw new ImageCorruptException($"compressed cluster at host offset {host} (+{span}) lies outside the file", "L2 table", host, HostFile.Path);
        }

        byte[] compressed = ArrayPool<byte>.Shared.Rent(span);
        try
        {
            await HostFile.ReadZeroFilledAsync(host, compressed.AsMemory(0, span), cancellationToken).ConfigureAwait(false);
            if (!Qcow2Compression.Decompress(Header.CompressionType, compressed.AsSpan(0, span), cluster.Span))
            {
                throw new ImageCorruptException($"compressed cluster at host offset {host} does not decompress", "compressed cluster", host, HostFile.Path);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }

    private void InvalidateDecompressed()
    {
        lock (_decompressedLock)
        {
            _decompressedValid = false;
        }
    }
}

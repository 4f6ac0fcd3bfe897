using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qcow2;

/// <summary>The read path: data, backing and compressed clusters (the mapping itself is in Qcow2Image.Mapping.cs).</summary>
internal sealed partial class Qcow2Image
{
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

using System.Buffers;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qed;

/// <summary>
/// Writes (qed_spec "Unallocated L2 tables and data clusters", QEMU's qed_aio_write_alloc). Writing into allocated
/// clusters is in place. Anything else allocates new clusters at the end of the file, fills what the write does not
/// cover from what was there before (the backing file, or zeros), then links them: the L2 entries, or a new L2 table
/// and then its L1 entry. Crash safety as QEMU's: without a backing file, the need-check bit is set before the first
/// allocation (a crash leaves at most leaked clusters, which the next writable open checks); with one, the new data
/// is flushed before the L2 update, so a crash never links a cluster that lost the backing data around the write.
/// </summary>
internal sealed partial class QedImage
{
    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckWritable();
        CheckRange(offsetBytes, buffer.Length);
        for (int done = 0; done < buffer.Length;)
        {
            long position = offsetBytes + done;
            await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
            bool locked = true;
            try
            {
                QedRun run = await FindRunAsync(position, buffer.Length - done, cancellationToken).ConfigureAwait(false);
                ReadOnlyMemory<byte> part = buffer.Slice(done, (int)run.LengthBytes);
                if (run.Kind == QedRunKind.Data)
                {
                    _lock.Release();
                    locked = false;
                    await HostFile.WriteAsync(run.HostOffsetBytes, part, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await AllocateAndWriteAsync(position, part, run, cancellationToken).ConfigureAwait(false);
                }

                done += part.Length;
            }
            finally
            {
                if (locked)
                {
                    _lock.Release();
                }
            }
        }
    }

    /// <summary>
    /// Cluster-aligned ranges become zero clusters (L2 entry 1) where nothing is allocated, and are zeroed in place where
    /// data is; the partial clusters at either end are written as zero data, as QEMU's generic fallback does.
    /// </summary>
    public async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        CheckWritable();
        CheckRange(offsetBytes, lengthBytes);
        long end = offsetBytes + lengthBytes;
        long alignedStart = Math.Min(end, Geometry.StartOfCluster(offsetBytes + Geometry.ClusterSize - 1));
        long alignedEnd = Math.Max(alignedStart, Geometry.StartOfCluster(end));
        await WriteZeroDataAsync(offsetBytes, alignedStart - offsetBytes, cancellationToken).ConfigureAwait(false);
        for (long position = alignedStart; position < alignedEnd;)
        {
            await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
            bool locked = true;
            try
            {
                QedRun run = await FindRunAsync(position, alignedEnd - position, cancellationToken).ConfigureAwait(false);
                if (run.Kind == QedRunKind.Data)
                {
                    _lock.Release();
                    locked = false;
                    if (flags.HasFlag(BlockZeroFlags.MayUnmap))
                    {
                        HostFile.PunchHole(run.HostOffsetBytes, run.LengthBytes);
                    }
                    else
                    {
                        HostFile.ZeroRange(run.HostOffsetBytes, run.LengthBytes);
                    }
                }
                else if (run.Kind == QedRunKind.Unallocated)
                {
                    await MarkNeedCheckAsync(cancellationToken).ConfigureAwait(false);
                    await LinkClustersAsync(position, Geometry.ClustersFor(run.LengthBytes), ZeroClusterEntry, run.L2Missing, cancellationToken).ConfigureAwait(false);
                }

                position += run.LengthBytes;
            }
            finally
            {
                if (locked)
                {
                    _lock.Release();
                }
            }
        }

        await WriteZeroDataAsync(alignedEnd, end - alignedEnd, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>QED has no discard (QEMU's driver has none either); the contract lets it leave the data as it is.</summary>
    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, lengthBytes);
        return ValueTask.CompletedTask;
    }

    private async ValueTask WriteZeroDataAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken)
    {
        if (lengthBytes <= 0)
        {
            return;
        }

        byte[] zeros = ArrayPool<byte>.Shared.Rent((int)lengthBytes);
        try
        {
            Array.Clear(zeros, 0, (int)lengthBytes);
            await WriteAsync(offsetBytes, zeros.AsMemory(0, (int)lengthBytes), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(zeros);
        }
    }

    /// <summary>An allocating write of one run (lock held): new clusters at the end of the file, filled and linked.</summary>
    private async ValueTask AllocateAndWriteAsync(long guestOffset, ReadOnlyMemory<byte> data, QedRun run, CancellationToken cancellationToken)
    {
        QedGeometry g = Geometry;
        long inCluster = g.OffsetInCluster(guestOffset);
        long clusters = g.ClustersFor(inCluster + data.Length);
        long oldLength = HostFile.Length;
        long host = AllocateBytes(clusters << g.ClusterBits);
        await MarkNeedCheckAsync(cancellationToken).ConfigureAwait(false);

        long clusterStart = g.StartOfCluster(guestOffset);
        await FillAsync(clusterStart, host, inCluster, run.Kind, oldLength, cancellationToken).ConfigureAwait(false);
        await HostFile.WriteAsync(host + inCluster, data, cancellationToken).ConfigureAwait(false);
        long tail = inCluster + data.Length;
        await FillAsync(clusterStart + tail, host + tail, (clusters << g.ClusterBits) - tail, run.Kind, oldLength, cancellationToken).ConfigureAwait(false);
        ExtendFileTo(host + (clusters << g.ClusterBits));
        if (_backing is not null)
        {
            // QEMU's order with a backing file: the copied backing data is on disk before any L2 entry names it.
            await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        await LinkClustersAsync(guestOffset, clusters, host, run.L2Missing, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Fills the part of a new cluster a write does not cover with what the guest saw there: the backing file's data
    /// for unallocated clusters, zeros for zero clusters or without a backing file. Zeros past the old end of the file
    /// need no write (the file is extended as a hole); zeros over stale bytes below it do.
    /// </summary>
    private async ValueTask FillAsync(long guestOffset, long hostOffset, long lengthBytes, QedRunKind kind, long oldLength, CancellationToken cancellationToken)
    {
        if (lengthBytes <= 0)
        {
            return;
        }

        bool fromBacking = kind == QedRunKind.Unallocated && BackingFileName is not null;
        if (fromBacking && _backing is null)
        {
            throw new UnsupportedFeatureException("a partial-cluster write needs the backing file, which is not open", HostFile.Path);
        }

        if (!fromBacking && hostOffset >= oldLength)
        {
            return;
        }

        byte[] fill = ArrayPool<byte>.Shared.Rent((int)lengthBytes);
        try
        {
            Memory<byte> part = fill.AsMemory(0, (int)lengthBytes);
            if (fromBacking)
            {
                await BackingRead.ReadOrZeroAsync(_backing, guestOffset, part, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                part.Span.Clear();
            }

            await HostFile.WriteAsync(hostOffset, part, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(fill);
        }
    }

    /// <summary>Makes the file reach <paramref name="endBytes"/>, so what was allocated lies inside it (check and the next
    /// open count clusters by the file's length).</summary>
    private void ExtendFileTo(long endBytes)
    {
        if (HostFile.Length < endBytes)
        {
            HostFile.SetLength(endBytes);
        }
    }

    /// <summary>QEMU sets the need-check bit before an allocation only without a backing file (with one, the flush before
    /// the L2 update keeps the image consistent).</summary>
    private async ValueTask MarkNeedCheckAsync(CancellationToken cancellationToken)
    {
        if (_backing is null && !Header.Has(QedFeatures.NeedCheck))
        {
            await WriteHeaderAsync(Header with { Features = Header.Features | QedFeatures.NeedCheck }, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Points <paramref name="clusters"/> L2 entries from <paramref name="guestOffset"/> at consecutive clusters from
    /// <paramref name="firstEntry"/> (or all at the zero marker), creating the L2 table first when there is none. Only the
    /// changed entries of an existing table are written; a new table is written whole before the L1 entry names it.
    /// </summary>
    private async ValueTask LinkClustersAsync(long guestOffset, long clusters, long firstEntry, bool l2Missing, CancellationToken cancellationToken)
    {
        QedGeometry g = Geometry;
        int l1Index = g.L1Index(guestOffset);
        int index = g.L2Index(guestOffset);
        long[] table;
        if (l2Missing)
        {
            table = new long[g.L2EntriesUsed(l1Index)];
        }
        else
        {
            table = await GetL2TableAsync(l1Index, cancellationToken).ConfigureAwait(false);
        }

        for (int i = 0; i < clusters; i++)
        {
            table[index + i] = firstEntry == ZeroClusterEntry ? ZeroClusterEntry : firstEntry + ((long)i << g.ClusterBits);
        }

        if (!l2Missing)
        {
            byte[] changed = OffsetTable.Serialize(table.AsSpan(index, (int)clusters), ByteOrder);
            await HostFile.WriteAsync(L1[l1Index] + (index * (long)OffsetTable.EntryBytes), changed, cancellationToken).ConfigureAwait(false);
            return;
        }

        long oldLength = HostFile.Length;
        long l2Offset = AllocateBytes(g.TableBytes);
        byte[] raw = OffsetTable.Serialize(table, ByteOrder);
        long written = l2Offset + raw.Length;
        long tableEnd = l2Offset + g.TableBytes;
        if (written < Math.Min(oldLength, tableEnd))
        {
            // Entries past the disk's end are never looked at, but check reads them: stale bytes there must read as 0.
            HostFile.ZeroRange(written, Math.Min(oldLength, tableEnd) - written);
        }

        await HostFile.WriteAsync(l2Offset, raw, cancellationToken).ConfigureAwait(false);
        ExtendFileTo(tableEnd);
        byte[] l1Entry = OffsetTable.Serialize([l2Offset], ByteOrder);
        await HostFile.WriteAsync((long)Header.L1TableOffset + (l1Index * (long)OffsetTable.EntryBytes), l1Entry, cancellationToken).ConfigureAwait(false);
        L1[l1Index] = l2Offset;
        L2Cache.Put(l2Offset, table);
    }
}

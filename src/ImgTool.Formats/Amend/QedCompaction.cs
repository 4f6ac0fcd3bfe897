using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Host;
using ImgTool.Formats.Qed;

namespace ImgTool.Formats.Amend;

/// <summary>
/// After a conversion to QED: moves the clusters at the end of the file into the holes the old metadata left, then
/// shrinks the file. QED has no refcounts, so its check (QEMU's qed_check_for_leaks) counts every cluster that no
/// table references as a leak; filling the holes makes that check clean. Only as many clusters move as there were
/// holes (the old metadata's size), never the guest data as a whole.
/// </summary>
/// <remarks>
/// Each move is crash-safe on its own: the copy goes into a hole (unreferenced), is flushed, and only then does the one
/// entry that references it change (an aligned 8-byte write in an L2 or the L1 table, or the header's l1_table_offset),
/// which is flushed again. A kill between the two leaves a leak, never a lost cluster. The truncation comes last.
/// A table needs table_size contiguous free clusters; when there is no such run, the data clusters in the lowest
/// window without tables are moved out first to make one.
/// </remarks>
internal sealed class QedCompaction(ConversionFile file, QedHeader header, QedGeometry geometry, long[] l1, HostClusterMap map)
{
    private readonly int _clusterSize = geometry.ClusterSize;
    private readonly int _tableClusters = geometry.TableClusters;
    private QedHeader _header = header;
    private long _lowestFree = 1;

    public long ClustersMoved { get; private set; }

    public long LeakedClusters { get; private set; }

    public async ValueTask RunAsync(CancellationToken cancellationToken)
    {
        long end = map.Length;
        while (true)
        {
            while (end > 1 && map[end - 1] == HostClusterMap.Free)
            {
                end--;
            }

            long owner = map[end - 1];
            long size = HostClusterMap.IsData(owner) ? 1 : _tableClusters;
            long source = end - size;
            if (owner == HostClusterMap.Header || source <= 0 || map[source] != owner)
            {
                break;
            }

            long destination = FindRun(size, source, exclude: -1);
            if (destination < 0 && size > 1)
            {
                destination = await MakeRunAsync(size, source, cancellationToken).ConfigureAwait(false);
            }

            if (destination < 0)
            {
                break;
            }

            await MoveAsync(source, destination, cancellationToken).ConfigureAwait(false);
            end = source;
        }

        for (long c = 1; c < end; c++)
        {
            if (map[c] == HostClusterMap.Free)
            {
                LeakedClusters++;
            }
        }

        long length = end * _clusterSize;
        if (length < file.File.Length)
        {
            file.SetLength(length);
            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The lowest run of <paramref name="size"/> free clusters below <paramref name="limit"/>, outside the
    /// window at <paramref name="exclude"/>; -1 if there is none.</summary>
    private long FindRun(long size, long limit, long exclude)
    {
        while (_lowestFree < map.Length && map[_lowestFree] != HostClusterMap.Free)
        {
            _lowestFree++;
        }

        long run = 0;
        for (long c = _lowestFree; c < limit; c++)
        {
            bool excluded = exclude >= 0 && c >= exclude && c < exclude + _tableClusters;
            run = map[c] == HostClusterMap.Free && !excluded ? run + 1 : 0;
            if (run == size)
            {
                return c - size + 1;
            }
        }

        return -1;
    }

    /// <summary>Frees the lowest window of table_size clusters below <paramref name="limit"/> that holds only free and
    /// data clusters, by moving its data clusters to holes outside it; returns the window, or -1.</summary>
    private async ValueTask<long> MakeRunAsync(long size, long limit, CancellationToken cancellationToken)
    {
        long free = 0;
        for (long c = 1; c < limit; c++)
        {
            free += map[c] == HostClusterMap.Free ? 1 : 0;
        }

        for (long window = 1; window + size <= limit; window++)
        {
            long data = 0;
            long freeInside = 0;
            bool usable = true;
            for (long c = window; c < window + size && usable; c++)
            {
                usable = map[c] >= 0;
                data += HostClusterMap.IsData(map[c]) ? 1 : 0;
                freeInside += map[c] == HostClusterMap.Free ? 1 : 0;
            }

            if (!usable || data > free - freeInside)
            {
                continue;
            }

            for (long c = window; c < window + size; c++)
            {
                if (HostClusterMap.IsData(map[c]))
                {
                    long hole = FindRun(1, limit, exclude: window);
                    await MoveAsync(c, hole, cancellationToken).ConfigureAwait(false);
                }
            }

            return window;
        }

        return -1;
    }

    private async ValueTask MoveAsync(long source, long destination, CancellationToken cancellationToken)
    {
        long owner = map[source];
        long size = HostClusterMap.IsData(owner) ? 1 : _tableClusters;
        long sourceOffset = source * _clusterSize;
        long destinationOffset = destination * _clusterSize;
        int bytes = (int)(size * _clusterSize);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(bytes);
        try
        {
            Memory<byte> data = buffer.AsMemory(0, bytes);
            await file.File.ReadZeroFilledAsync(sourceOffset, data, cancellationToken).ConfigureAwait(false);
            await file.WriteAsync(destinationOffset, data, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        await file.FlushAsync(cancellationToken).ConfigureAwait(false);

        // Point the one reference at the copy.
        if (HostClusterMap.IsData(owner))
        {
            long guestOffset = HostClusterMap.GuestCluster(owner) * _clusterSize;
            long l2Offset = l1[geometry.L1Index(guestOffset)];
            await WriteEntryAsync(l2Offset + (geometry.L2Index(guestOffset) * (long)OffsetTable.EntryBytes), destinationOffset, cancellationToken).ConfigureAwait(false);
        }
        else if (HostClusterMap.IsL2(owner))
        {
            long index = HostClusterMap.L2Index(owner);
            l1[index] = destinationOffset;
            await WriteEntryAsync((long)_header.L1TableOffset + (index * OffsetTable.EntryBytes), destinationOffset, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            _header = _header with { L1TableOffset = (ulong)destinationOffset };
            await file.WriteAsync(0, _header.ToBytes(), cancellationToken).ConfigureAwait(false);
        }

        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        map.Set(source, size, HostClusterMap.Free);
        map.Set(destination, size, owner);
        ClustersMoved += size;
    }

    private async ValueTask WriteEntryAsync(long offsetBytes, long value, CancellationToken cancellationToken)
    {
        byte[] raw = new byte[OffsetTable.EntryBytes];
        BinaryPrimitives.WriteInt64LittleEndian(raw, value);
        await file.WriteAsync(offsetBytes, raw, cancellationToken).ConfigureAwait(false);
    }
}

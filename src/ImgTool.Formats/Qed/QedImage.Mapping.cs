using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qed;

/// <summary>Guest offset to file offset through L1 and L2 (QEMU's qed_find_cluster). Called with the metadata lock held.</summary>
internal sealed partial class QedImage
{
    /// <summary>L2 entry of a zero cluster (the spec's "1 - zero").</summary>
    internal const long ZeroClusterEntry = 1;

    /// <summary>
    /// The run of same-kind clusters at <paramref name="guestOffset"/>, at most <paramref name="maxLengthBytes"/> long and
    /// never past the end of its L2 table. Allocated clusters make one run only while they are contiguous in the file.
    /// </summary>
    internal async ValueTask<QedRun> FindRunAsync(long guestOffset, long maxLengthBytes, CancellationToken cancellationToken)
    {
        QedGeometry g = Geometry;
        int l1Index = g.L1Index(guestOffset);
        long length = Math.Min(maxLengthBytes, ((l1Index + 1) * g.L2CoverageBytes) - guestOffset);
        long l2Offset = L1[l1Index];
        if (l2Offset == 0)
        {
            return new QedRun(QedRunKind.Unallocated, length, -1, L2Missing: true);
        }

        long[] l2 = await GetL2TableAsync(l1Index, cancellationToken).ConfigureAwait(false);
        int index = g.L2Index(guestOffset);
        long inCluster = g.OffsetInCluster(guestOffset);
        int wanted = (int)Math.Min(g.ClustersFor(inCluster + length), l2.Length - index);
        long first = l2[index];
        int count = 1;
        if (first == 0 || first == ZeroClusterEntry)
        {
            while (count < wanted && l2[index + count] == first)
            {
                count++;
            }
        }
        else
        {
            CheckDataOffset(first, guestOffset);

            // A run of data ends where the file offsets stop being consecutive, and before any cluster past the end of the file.
            while (count < wanted && l2[index + count] == first + ((long)count << g.ClusterBits) && l2[index + count] < FileEnd)
            {
                count++;
            }
        }

        length = Math.Min(length, ((long)count << g.ClusterBits) - inCluster);
        return first switch
        {
            0 => new QedRun(QedRunKind.Unallocated, length, -1, L2Missing: false),
            ZeroClusterEntry => new QedRun(QedRunKind.Zero, length, -1, L2Missing: false),
            _ => new QedRun(QedRunKind.Data, length, first + inCluster, L2Missing: false),
        };
    }

    /// <summary>The L2 table an L1 entry names (its entries that map the disk), read and cached on first use.</summary>
    internal async ValueTask<long[]> GetL2TableAsync(int l1Index, CancellationToken cancellationToken)
    {
        long l2Offset = L1[l1Index];
        int entries = Geometry.L2EntriesUsed(l1Index);
        if (L2Cache.Find(l2Offset, entries) is { } cached)
        {
            return cached;
        }

        if (!QedHeaderValidation.IsValidTableOffset((ulong)l2Offset, Header, Geometry, FileEnd))
        {
            throw new ImageCorruptException(
                $"L1 entry {l1Index} points to an invalid L2 table offset {(ulong)l2Offset} (unaligned, in the header or past the end of the file); run 'check -r all'",
                "L1 table", (long)Header.L1TableOffset + (l1Index * (long)OffsetTable.EntryBytes), HostFile.Path);
        }

        long[] table = await OffsetTable.ReadAsync(HostFile, l2Offset, entries, ByteOrder, cancellationToken).ConfigureAwait(false);
        L2Cache.Put(l2Offset, table);
        return table;
    }

    private void CheckDataOffset(long entry, long guestOffset)
    {
        if (!QedHeaderValidation.IsValidClusterOffset((ulong)entry, Header, FileEnd))
        {
            throw new ImageCorruptException(
                $"the L2 entry for guest offset {Geometry.StartOfCluster(guestOffset)} points to an invalid cluster offset {(ulong)entry} (unaligned, in the header or past the end of the file); run 'check -r all'",
                "L2 table", L1[Geometry.L1Index(guestOffset)], HostFile.Path);
        }
    }
}

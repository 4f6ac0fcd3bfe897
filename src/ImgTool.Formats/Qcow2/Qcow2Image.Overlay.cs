using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// What rebase and commit ask of an overlay: a new backing file name in the header (QEMU's
/// qcow2_change_backing_file), and dropping every cluster so the whole disk falls through to the backing file
/// again (qcow2_make_empty). Mappings are cleared on disk and flushed before any refcount drops, so a crash in
/// between leaves only leaked clusters, which check -r leaks reclaims.
/// </summary>
internal sealed partial class Qcow2Image : IBackingFileChange, IMakeEmpty
{
    public async ValueTask ChangeBackingFileAsync(string? backingFileName, string? backingFormat, CancellationToken cancellationToken = default)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await BeforeFirstWriteAsync(cancellationToken).ConfigureAwait(false);
            if (HasExternalDataFile && Header.Autoclear.HasFlag(Qcow2Autoclear.DataFileRaw) && !string.IsNullOrEmpty(backingFileName))
            {
                // The spec: with data-file-raw the data file alone must be the disk, which a backing file contradicts.
                throw new UnsupportedFeatureException("an image with data_file_raw=on cannot have a backing file", HostFile.Path);
            }

            string? name = string.IsNullOrEmpty(backingFileName) ? null : backingFileName;

            // The backing format extension goes first, where QEMU's qcow2_update_header writes it.
            List<Qcow2HeaderExtension> extensions = [.. Header.Extensions.Where(e => e.Type != Qcow2HeaderExtension.BackingFormat)];
            if (name is not null && backingFormat is not null)
            {
                extensions.Insert(0, new Qcow2HeaderExtension(Qcow2HeaderExtension.BackingFormat, Encoding.UTF8.GetBytes(backingFormat)));
            }

            Qcow2Header changed = Header with { BackingFileName = name, BackingFileOffset = 0, BackingFileSize = 0, Extensions = extensions };
            if (changed.SerializedLength > ClusterSize || (name is not null && Encoding.UTF8.GetByteCount(name) > Qcow2Limits.MaxBackingFileNameBytes))
            {
                throw new UnsupportedFeatureException("the backing file name does not fit in the image header", HostFile.Path);
            }

            Header = changed;
            await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
            await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    public async ValueTask MakeEmptyAsync(CancellationToken cancellationToken = default)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await BeforeFirstWriteAsync(cancellationToken).ConfigureAwait(false);
            await MarkDirtyAsync(0, SizeBytes, cancellationToken).ConfigureAwait(false);
            InvalidateDecompressed();
            await DropL2TablesAsync(0, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Unmaps every L2 table from L1 index <paramref name="firstL1Index"/> on: the L1 entries are zeroed and
    /// flushed first, then the data clusters and the tables lose the active table's reference (one each, whether or
    /// not a snapshot shares them). Caller holds the lock.</summary>
    private async ValueTask DropL2TablesAsync(long firstL1Index, CancellationToken cancellationToken)
    {
        var dropped = new List<long>();
        for (long i = firstL1Index; i < L1.Length; i++)
        {
            long l2Offset = (long)((ulong)L1[i] & Qcow2L2Entry.OffsetMask);
            if (l2Offset != 0)
            {
                dropped.Add(l2Offset);
            }

            L1[i] = 0;
        }

        if (dropped.Count == 0)
        {
            return;
        }

        await HostFile.WriteAsync(Header.L1TableOffset, SerializeL1(L1), cancellationToken).ConfigureAwait(false);
        await FlushAsync(cancellationToken).ConfigureAwait(false);
        foreach (long l2Offset in dropped)
        {
            byte[] table = await L2Cache.GetAsync(l2Offset, cancellationToken).ConfigureAwait(false);
            L2Cache.Remove(l2Offset);
            var entries = new List<ulong>((int)L2Entries);
            for (long j = 0; j < L2Entries; j++)
            {
                entries.Add(ReadL2Entry(table, j).Entry);
            }

            await FreeEntriesAsync(entries, cancellationToken).ConfigureAwait(false);

            if (await Refcounts.AddAsync(l2Offset >> _clusterBits, -1, cancellationToken).ConfigureAwait(false) == 0
                && l2Offset + ClusterSize <= HostFile.Length)
            {
                HostFile.PunchHole(l2Offset, ClusterSize);
            }
        }
    }

    /// <summary>Unmaps the clusters of L2 entries [<paramref name="firstEntry"/>, end of table) of one L1 index: the
    /// entries are cleared and flushed, then their clusters lose a reference. Caller holds the lock.</summary>
    private async ValueTask DropL2EntriesAsync(long l1Index, long firstEntry, CancellationToken cancellationToken)
    {
        if ((ulong)L1[l1Index] == 0)
        {
            return;
        }

        (byte[] table, long l2Offset) = await GetL2ForWriteAsync(l1Index, cancellationToken).ConfigureAwait(false);
        var freed = new List<ulong>();
        for (long j = firstEntry; j < L2Entries; j++)
        {
            (ulong entry, ulong bitmap) = ReadL2Entry(table, j);
            if (entry != 0 || bitmap != 0)
            {
                freed.Add(entry);
                WriteL2Entry(table, j, 0, 0);
            }
        }

        if (freed.Count == 0)
        {
            return;
        }

        await WriteL2EntriesAsync(table, l2Offset, firstEntry, L2Entries - firstEntry, cancellationToken).ConfigureAwait(false);
        await FlushAsync(cancellationToken).ConfigureAwait(false);
        await FreeEntriesAsync(freed, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Drops the active table's reference of many L2 entries at once. A standard cluster with the COPIED flag has
    /// refcount one (the spec's invariant, which QEMU relies on too), so runs of such clusters go to zero with one
    /// refcount write and one hole punch per run, not per cluster; everything else (compressed, shared with a
    /// snapshot) goes through <see cref="FreeEntryAsync"/>. Caller holds the lock.
    /// </summary>
    private async ValueTask FreeEntriesAsync(List<ulong> entries, CancellationToken cancellationToken)
    {
        if (HasExternalDataFile)
        {
            return; // clusters of an external data file are not refcounted (FreeEntryAsync does nothing either)
        }

        var clusters = new List<long>(entries.Count);
        foreach (ulong entry in entries)
        {
            long offset = (long)(entry & Qcow2L2Entry.OffsetMask);
            if ((entry & (Qcow2L2Entry.Copied | Qcow2L2Entry.Compressed)) == Qcow2L2Entry.Copied && offset != 0)
            {
                clusters.Add(offset >> _clusterBits);
            }
            else if (offset != 0 || (entry & Qcow2L2Entry.Compressed) != 0)
            {
                await FreeEntryAsync(entry, cancellationToken).ConfigureAwait(false);
            }
        }

        clusters.Sort();
        for (int i = 0; i < clusters.Count;)
        {
            int end = i + 1;
            while (end < clusters.Count && clusters[end] == clusters[end - 1] + 1)
            {
                end++;
            }

            long first = clusters[i];
            long count = end - i;
            await Refcounts.SetRangeAsync(first, count, 0, cancellationToken).ConfigureAwait(false);
            for (long c = first; c < first + count; c++)
            {
                ForgetCompressedCursor(c);
            }

            long hostEnd = Math.Min((first + count) << _clusterBits, HostFile.Length);
            if (hostEnd > first << _clusterBits)
            {
                HostFile.PunchHole(first << _clusterBits, hostEnd - (first << _clusterBits));
            }

            i = end;
        }

        if (clusters.Count > 0)
        {
            Refcounts.ResetFreeHint();
        }
    }
}

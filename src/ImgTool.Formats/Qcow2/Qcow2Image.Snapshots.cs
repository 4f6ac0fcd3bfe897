using System.Buffers.Binary;
using System.Globalization;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// Internal snapshots (docs/interop/qcow2.txt, "Snapshots"): a snapshot is a copy of the L1 table;
/// every L2 table and data cluster reachable from it gets one more reference, so a later write
/// copies instead of overwriting. Refcount bookkeeping follows QEMU's qcow2-snapshot.c: a cluster's
/// refcount is the number of L1 tables that reach it.
/// </summary>
internal sealed partial class Qcow2Image : ISnapshots
{
    public async ValueTask<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync(CancellationToken cancellationToken = default)
    {
        (IReadOnlyList<Qcow2Snapshot> snapshots, _) = await Qcow2Snapshots.ReadAsync(HostFile, Header, cancellationToken).ConfigureAwait(false);
        return [.. snapshots.Select(s => new SnapshotInfo(
            s.Id,
            s.Name,
            (long)Math.Min(s.VmStateSize, long.MaxValue),
            DateTimeOffset.FromUnixTimeSeconds(s.DateSeconds).AddTicks(s.DateNanoseconds / 100),
            (long)Math.Min(s.VmClockNanoseconds, long.MaxValue),
            s.Icount is { } icount && icount != ulong.MaxValue ? (long)icount : null))];
    }

    /// <summary>The spec: with an external data file "neither compressed clusters nor internal snapshots are
    /// supported" (data clusters have no refcounts, so nothing could be shared between snapshots).</summary>
    private void RefuseWithExternalDataFile()
    {
        if (HasExternalDataFile)
        {
            throw new UnsupportedFeatureException("internal snapshots are not supported in an image with an external data file", HostFile.Path);
        }
    }

    public async ValueTask CreateSnapshotAsync(string name, DateTimeOffset date, CancellationToken cancellationToken = default)
    {
        RefuseWithExternalDataFile();
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await BeforeFirstWriteAsync(cancellationToken).ConfigureAwait(false);
            if (Header.RefcountBits < 2)
            {
                throw new UnsupportedFeatureException("internal snapshots need refcounts of at least 2 bits (refcount_bits=1 cannot count shared clusters)", HostFile.Path);
            }

            (IReadOnlyList<Qcow2Snapshot> snapshots, long oldTableBytes) = await Qcow2Snapshots.ReadAsync(HostFile, Header, cancellationToken).ConfigureAwait(false);
            long nextId = 1 + snapshots.Select(s => long.TryParse(s.Id, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : 0).DefaultIfEmpty(0).Max();

            // One more reference to everything the active L1 reaches; COPIED flags drop accordingly.
            await UpdateTreeAsync(L1, 1, active: true, cancellationToken).ConfigureAwait(false);
            long l1Bytes = L1.Length * 8L;
            long l1Offset = l1Bytes == 0 ? 0 : await Refcounts.AllocateAsync((l1Bytes + ClusterSize - 1) / ClusterSize, cancellationToken).ConfigureAwait(false);
            if (l1Bytes > 0)
            {
                await HostFile.WriteAsync(l1Offset, SerializeL1(L1), cancellationToken).ConfigureAwait(false);
            }

            var snapshot = new Qcow2Snapshot(
                l1Offset == 0 ? (long)ClusterSize : l1Offset,
                L1.Length,
                nextId.ToString(CultureInfo.InvariantCulture),
                name,
                (uint)date.ToUnixTimeSeconds(),
                (uint)(date.Ticks % TimeSpan.TicksPerSecond * 100),
                0,
                0,
                (ulong)SizeBytes,
                0);
            await WriteSnapshotTableAsync([.. snapshots, snapshot], oldTableBytes, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    public async ValueTask ApplySnapshotAsync(string idOrName, CancellationToken cancellationToken = default)
    {
        RefuseWithExternalDataFile();
        RefuseSnapshotRevertWithBitmaps();
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await BeforeFirstWriteAsync(cancellationToken).ConfigureAwait(false);
            InvalidateDecompressed();
            (IReadOnlyList<Qcow2Snapshot> snapshots, _) = await Qcow2Snapshots.ReadAsync(HostFile, Header, cancellationToken).ConfigureAwait(false);
            Qcow2Snapshot snapshot = Find(snapshots, idOrName);
            if (snapshot.L1Size > L1.Length)
            {
                // The image was shrunk after the snapshot: the active table must reach as far as the snapshot's.
                await GrowL1Async(snapshot.L1Size, cancellationToken).ConfigureAwait(false);
            }

            long[] snapshotL1 = await ReadL1Async(HostFile, snapshot.L1TableOffset, snapshot.L1Size, cancellationToken).ConfigureAwait(false);
            await UpdateTreeAsync(snapshotL1, 1, active: false, cancellationToken).ConfigureAwait(false);
            long[] oldL1 = (long[])L1.Clone();
            _compressedCursor = 0; // clusters freed below may be handed out again
            Array.Clear(L1);
            Array.Copy(snapshotL1, L1, snapshotL1.Length);
            await HostFile.WriteAsync(Header.L1TableOffset, SerializeL1(L1), cancellationToken).ConfigureAwait(false);
            await UpdateTreeAsync(oldL1, -1, active: false, cancellationToken).ConfigureAwait(false);
            await UpdateTreeAsync(L1, 0, active: true, cancellationToken).ConfigureAwait(false);
            if (snapshot.DiskSizeBytes is { } size && (long)size != SizeBytes)
            {
                // The disk was resized after the snapshot: it takes the snapshot's size back, as QEMU does.
                Header = Header with { SizeBytes = (long)size };
                await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    public async ValueTask DeleteSnapshotAsync(string idOrName, CancellationToken cancellationToken = default)
    {
        RefuseWithExternalDataFile();
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await BeforeFirstWriteAsync(cancellationToken).ConfigureAwait(false);
            (IReadOnlyList<Qcow2Snapshot> snapshots, long oldTableBytes) = await Qcow2Snapshots.ReadAsync(HostFile, Header, cancellationToken).ConfigureAwait(false);
            Qcow2Snapshot snapshot = Find(snapshots, idOrName);
            await WriteSnapshotTableAsync([.. snapshots.Where(s => !ReferenceEquals(s, snapshot))], oldTableBytes, cancellationToken).ConfigureAwait(false);
            long[] snapshotL1 = await ReadL1Async(HostFile, snapshot.L1TableOffset, snapshot.L1Size, cancellationToken).ConfigureAwait(false);
            _compressedCursor = 0;
            await UpdateTreeAsync(snapshotL1, -1, active: false, cancellationToken).ConfigureAwait(false);
            long l1Clusters = ((snapshot.L1Size * 8L) + ClusterSize - 1) / ClusterSize;
            for (long c = 0; c < l1Clusters; c++)
            {
                await Refcounts.AddAsync((snapshot.L1TableOffset >> _clusterBits) + c, -1, cancellationToken).ConfigureAwait(false);
            }

            await UpdateTreeAsync(L1, 0, active: true, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Moves the active L1 table to new clusters with room for <paramref name="entries"/> entries:
    /// the new table is written, then the header points to it, then the old clusters are freed.</summary>
    private async ValueTask GrowL1Async(int entries, CancellationToken cancellationToken)
    {
        long[] grown = new long[entries];
        Array.Copy(L1, grown, L1.Length);
        long oldOffset = Header.L1TableOffset;
        long oldClusters = ((L1.Length * 8L) + ClusterSize - 1) / ClusterSize;
        long offset = await Refcounts.AllocateAsync(((entries * 8L) + ClusterSize - 1) / ClusterSize, cancellationToken).ConfigureAwait(false);
        await HostFile.WriteAsync(offset, SerializeL1(grown), cancellationToken).ConfigureAwait(false);
        await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
        Header = Header with { L1TableOffset = offset, L1Size = entries };
        await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
        L1 = grown;
        for (long c = 0; c < oldClusters && oldOffset != 0; c++)
        {
            await Refcounts.AddAsync((oldOffset >> _clusterBits) + c, -1, cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask LoadSnapshotReadOnlyAsync(string? idOrName, string? id, string? name, CancellationToken cancellationToken = default)
    {
        if (!IsReadOnly)
        {
            throw new UnsupportedFeatureException("a snapshot can only be loaded into an image opened read-only", HostFile.Path);
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            (IReadOnlyList<Qcow2Snapshot> snapshots, _) = await Qcow2Snapshots.ReadAsync(HostFile, Header, cancellationToken).ConfigureAwait(false);
            Qcow2Snapshot snapshot = (idOrName is null
                    ? snapshots.FirstOrDefault(s => (id is null || s.Id == id) && (name is null || s.Name == name))
                    : TryFind(snapshots, idOrName))
                ?? throw new ImgToolException("Failed to load snapshot: Can't find snapshot");

            // Only memory changes: the L1 table reads start from. The disk keeps its current size, as with QEMU
            // (what the snapshot's table does not reach reads as zeros, or from the backing file).
            L1 = await ReadL1Async(HostFile, snapshot.L1TableOffset, snapshot.L1Size, cancellationToken).ConfigureAwait(false);
            InvalidateDecompressed();
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>IDs are matched first, then names, as QEMU does.</summary>
    private static Qcow2Snapshot? TryFind(IReadOnlyList<Qcow2Snapshot> snapshots, string idOrName) =>
        snapshots.FirstOrDefault(s => s.Id == idOrName) ?? snapshots.FirstOrDefault(s => s.Name == idOrName);

    private Qcow2Snapshot Find(IReadOnlyList<Qcow2Snapshot> snapshots, string idOrName) =>
        TryFind(snapshots, idOrName)
        ?? throw new ImgToolException($"snapshot '{idOrName}' not found", HostFile.Path);

    private static byte[] SerializeL1(long[] l1) => OffsetTable.Serialize(l1, TableByteOrder.BigEndian);

    /// <summary>Writes the table to new clusters, points the header at it and frees the old one.</summary>
    private async ValueTask WriteSnapshotTableAsync(IReadOnlyList<Qcow2Snapshot> snapshots, long oldTableBytes, CancellationToken cancellationToken)
    {
        long oldOffset = Header.SnapshotsOffset;
        byte[] table = Qcow2Snapshots.Write(snapshots);
        long offset = 0;
        if (table.Length > 0)
        {
            offset = await Refcounts.AllocateAsync((table.Length + ClusterSize - 1) / ClusterSize, cancellationToken).ConfigureAwait(false);
            await HostFile.WriteAsync(offset, table, cancellationToken).ConfigureAwait(false);
        }

        Header = Header with { NbSnapshots = snapshots.Count, SnapshotsOffset = offset };
        await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
        if (oldOffset != 0 && oldTableBytes > 0)
        {
            for (long c = 0; c < (oldTableBytes + ClusterSize - 1) / ClusterSize; c++)
            {
                await Refcounts.AddAsync((oldOffset >> _clusterBits) + c, -1, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Adds <paramref name="addend"/> to the refcount of every L2 table and data cluster an L1 table
    /// reaches (QEMU's qcow2_update_snapshot_refcount); for the active table, then sets each COPIED
    /// flag to "refcount is one". Caller holds the lock.
    /// </summary>
    private async ValueTask UpdateTreeAsync(long[] l1, int addend, bool active, CancellationToken cancellationToken)
    {
        for (long i = 0; i < l1.Length; i++)
        {
            ulong l1Entry = (ulong)l1[i];
            long l2Offset = (long)(l1Entry & Qcow2L2Entry.OffsetMask);
            if (l2Offset == 0)
            {
                continue;
            }

            if ((l2Offset & (ClusterSize - 1)) != 0 || l2Offset + ClusterSize > HostFile.Length)
            {
                throw new ImageCorruptException($"L2 table offset {l2Offset} is invalid; run check", "L1 table", l2Offset, HostFile.Path);
            }

            byte[] table = await L2Cache.GetAsync(l2Offset, cancellationToken).ConfigureAwait(false);
            bool dirty = false;
            for (long j = 0; j < L2Entries; j++)
            {
                (ulong entry, ulong bitmap) = ReadL2Entry(table, j);
                if ((entry & Qcow2L2Entry.Compressed) != 0)
                {
                    if (addend != 0)
                    {
                        long host = Qcow2L2Entry.CompressedHostOffset(entry, _clusterBits);
                        long end = host + Qcow2L2Entry.CompressedSpanBytes(entry, _clusterBits);
                        for (long c = host >> _clusterBits; c <= (end - 1) >> _clusterBits; c++)
                        {
                            await Refcounts.AddAsync(c, addend, cancellationToken).ConfigureAwait(false);
                        }
                    }

                    continue;
                }

                long data = (long)(entry & Qcow2L2Entry.OffsetMask);
                if (data == 0)
                {
                    continue;
                }

                ulong refcount = addend != 0
                    ? await Refcounts.AddAsync(data >> _clusterBits, addend, cancellationToken).ConfigureAwait(false)
                    : await Refcounts.GetAsync(data >> _clusterBits, cancellationToken).ConfigureAwait(false);
                if (active)
                {
                    ulong wanted = refcount == 1 ? entry | Qcow2L2Entry.Copied : entry & ~Qcow2L2Entry.Copied;
                    if (wanted != entry)
                    {
                        WriteL2Entry(table, j, wanted, bitmap);
                        dirty = true;
                    }
                }
            }

            if (dirty)
            {
                await HostFile.WriteAsync(l2Offset, table, cancellationToken).ConfigureAwait(false);
            }

            ulong l2Refcount = addend != 0
                ? await Refcounts.AddAsync(l2Offset >> _clusterBits, addend, cancellationToken).ConfigureAwait(false)
                : await Refcounts.GetAsync(l2Offset >> _clusterBits, cancellationToken).ConfigureAwait(false);
            if (l2Refcount == 0)
            {
                L2Cache.Remove(l2Offset);
            }

            if (active)
            {
                ulong wanted = l2Refcount == 1 ? l1Entry | Qcow2L2Entry.Copied : l1Entry & ~Qcow2L2Entry.Copied;
                if (wanted != l1Entry)
                {
                    await SetL1EntryAsync(i, wanted, cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }
}

using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qcow2;

/// <summary>Where the write path meets the persistent dirty bitmaps (<see cref="Qcow2DirtyBitmaps"/>).</summary>
internal sealed partial class Qcow2Image
{
    /// <summary>The enabled bitmaps being kept up to date, from the first change until close; null when none.</summary>
    private Qcow2DirtyBitmaps? _dirtyBitmaps;

    /// <summary>Records that the guest range changes, before it does (QEMU marks every write, write-zeroes
    /// and discard request whole, whether or not it changed anything).</summary>
    private ValueTask MarkDirtyAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken) =>
        _dirtyBitmaps?.MarkAsync(offsetBytes, lengthBytes, cancellationToken) ?? ValueTask.CompletedTask;

    /// <summary>QEMU refuses to revert to a snapshot while the image has persistent bitmaps ("Device has active
    /// dirty bitmaps"): the whole disk would change behind them.</summary>
    private void RefuseSnapshotRevertWithBitmaps()
    {
        if (Bitmaps.Count > 0)
        {
            throw new UnsupportedFeatureException("cannot revert to a snapshot while the image has persistent dirty bitmaps (remove them first, as qemu-img requires)", HostFile.Path);
        }
    }

    /// <summary>
    /// Rewrites directory entries in place (new table offset, size and flags), as QEMU's
    /// update_ext_header_and_dir_in_place: the autoclear bit is cleared while the directory changes, so that a
    /// torn update leaves an extension every reader ignores rather than a directory that lies.
    /// </summary>
    public async ValueTask RewriteBitmapEntriesAsync(IReadOnlyList<Qcow2Bitmap> updated, CancellationToken cancellationToken)
    {
        if (updated.Count == 0)
        {
            return;
        }

        Header = Header with { Autoclear = Header.Autoclear & ~Qcow2Autoclear.Bitmaps };
        await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
        await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
        foreach (Qcow2Bitmap bitmap in updated)
        {
            byte[] fields = Qcow2Bitmaps.MutableFields(bitmap.TableOffset, bitmap.TableSize, bitmap.Flags);
            await HostFile.WriteAsync(bitmap.EntryOffset, fields, cancellationToken).ConfigureAwait(false);
        }

        await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
        Header = Header with { Autoclear = Header.Autoclear | Qcow2Autoclear.Bitmaps };
        await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
        await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
        Bitmaps = [.. Bitmaps.Select(b => updated.FirstOrDefault(u => u.EntryOffset == b.EntryOffset) ?? b)];
    }

    /// <summary>Drops the reference of metadata clusters no longer used, giving the space back to the host.</summary>
    public async ValueTask FreeMetadataClustersAsync(long offsetBytes, long clusters, CancellationToken cancellationToken)
    {
        for (long i = 0; i < clusters; i++)
        {
            long cluster = (offsetBytes >> _clusterBits) + i;
            if (await Refcounts.AddAsync(cluster, -1, cancellationToken).ConfigureAwait(false) == 0)
            {
                ForgetCompressedCursor(cluster);
                if ((cluster + 1) << _clusterBits <= HostFile.Length)
                {
                    HostFile.PunchHole(cluster << _clusterBits, ClusterSize);
                }
            }
        }
    }

    /// <summary>On close: the tracked bitmaps are written back (QEMU's qcow2_store_persistent_dirty_bitmaps).</summary>
    private async ValueTask StoreDirtyBitmapsAsync(CancellationToken cancellationToken)
    {
        if (_dirtyBitmaps is null || IsReadOnly)
        {
            return;
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _dirtyBitmaps.StoreAsync(cancellationToken).ConfigureAwait(false);
            _dirtyBitmaps = null;
        }
        finally
        {
            _lock.Release();
        }
    }
}

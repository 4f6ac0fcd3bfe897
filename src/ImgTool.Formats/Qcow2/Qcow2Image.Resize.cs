using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// Resize (QEMU's qcow2_co_truncate): growing makes room in the L1 table (moved to new clusters when it must grow)
/// and then changes the size in the header; shrinking unmaps every cluster past the new end first, then writes the
/// smaller size. Either way the header changes last, so an interrupted resize leaves the old size over
/// consistent tables.
/// </summary>
internal sealed partial class Qcow2Image : IResizable
{
    public async ValueTask ResizeAsync(long newSizeBytes, CancellationToken cancellationToken = default)
    {
        if (newSizeBytes % 512 != 0)
        {
            throw new InvalidOptionException("The new size must be a multiple of 512", HostFile.Path);
        }

        if (newSizeBytes < 0 || newSizeBytes > Qcow2Limits.MaxVirtualSizeBytes)
        {
            throw new InvalidOptionException($"image size {newSizeBytes} is too large for qcow2", HostFile.Path);
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Header.NbSnapshots > 0 && Header.Version < 3)
            {
                // v2 snapshots do not record their disk size, so a resize would change what they read as (QEMU's rule).
                throw new UnsupportedFeatureException("Can't resize a v2 image which has snapshots", HostFile.Path);
            }

            if (Bitmaps.Count > 0)
            {
                throw new UnsupportedFeatureException("resizing an image with persistent bitmaps is not supported; remove them first (bitmap --remove)", HostFile.Path);
            }

            if (HasExternalDataFile)
            {
                throw new UnsupportedFeatureException("resizing an image with an external data file is not supported", HostFile.Path);
            }

            await BeforeFirstWriteAsync(cancellationToken).ConfigureAwait(false);
            long l2SpanBytes = ClusterSize << _l2Bits;
            long newL1Size = (newSizeBytes + l2SpanBytes - 1) / l2SpanBytes;
            if (newL1Size * 8 > Qcow2Limits.MaxL1Bytes)
            {
                throw new InvalidOptionException("the new size is too large for this cluster size (the L1 table would exceed 32 MiB)", HostFile.Path);
            }

            if (newSizeBytes >= SizeBytes)
            {
                if (newL1Size > L1.Length)
                {
                    await GrowL1Async((int)newL1Size, cancellationToken).ConfigureAwait(false);
                    await FlushAsync(cancellationToken).ConfigureAwait(false);
                }

                Header = Header with { SizeBytes = newSizeBytes };
            }
            else
            {
                InvalidateDecompressed();
                long keptClusters = (newSizeBytes + ClusterSize - 1) >> _clusterBits;
                long partialL1 = keptClusters >> _l2Bits;
                if (partialL1 < L1.Length && (keptClusters & (L2Entries - 1)) != 0)
                {
                    await DropL2EntriesAsync(partialL1, keptClusters & (L2Entries - 1), cancellationToken).ConfigureAwait(false);
                    partialL1++;
                }

                await DropL2TablesAsync(partialL1, cancellationToken).ConfigureAwait(false);
                await FlushAsync(cancellationToken).ConfigureAwait(false);

                // As qcow2_shrink_l1_table: the L1 table keeps its size and clusters, the entries past the end are zero.
                Header = Header with { SizeBytes = newSizeBytes };
            }

            await WriteHeaderAsync(cancellationToken).ConfigureAwait(false);
            await FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }
}

using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qed;

/// <summary>
/// Growing a QED image (QEMU's bdrv_qed_co_truncate): the L1 table has a fixed size, so only image_size changes, up
/// to what the table can map; shrinking is refused as QEMU refuses it. The L1 entries the larger disk now uses are
/// read from the table (QEMU never allocates past the end, so they are zero).
/// </summary>
internal sealed partial class QedImage : IResizable
{
    public async ValueTask ResizeAsync(long newSizeBytes, CancellationToken cancellationToken = default)
    {
        CheckWritable();
        if (newSizeBytes % 512 != 0 || newSizeBytes > QedGeometry.MaxImageSize(Header.ClusterSize, Header.TableSize))
        {
            throw new InvalidOptionException("Invalid image size specified (a multiple of 512 up to what the L1 table maps)", HostFile.Path);
        }

        if (newSizeBytes < SizeBytes)
        {
            throw new UnsupportedFeatureException("Shrinking images is currently not supported", HostFile.Path);
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var geometry = new QedGeometry(Header.ClusterSize, Header.TableSize, newSizeBytes);
            long[] l1 = await OffsetTable.ReadAsync(HostFile, (long)Header.L1TableOffset, geometry.L1EntriesUsed, ByteOrder, cancellationToken).ConfigureAwait(false);
            await WriteHeaderAsync(Header with { ImageSize = (ulong)newSizeBytes }, cancellationToken).ConfigureAwait(false);
            await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
            Geometry = geometry;
            L1 = l1;
            L2Cache.Clear();
        }
        finally
        {
            _lock.Release();
        }
    }
}

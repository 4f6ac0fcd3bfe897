using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qed;

/// <summary>
/// rebase's header change (QEMU's bdrv_qed_change_backing_file): the name goes right after the 64 header bytes, in
/// the header clusters, and header and name are written in one request so a crash leaves one or the other. QED
/// stores no backing format except "raw, do not probe" (<see cref="QedFeatures.BackingFormatNoProbe"/>).
/// </summary>
internal sealed partial class QedImage : IBackingFileChange
{
    public async ValueTask ChangeBackingFileAsync(string? backingFileName, string? backingFormat, CancellationToken cancellationToken = default)
    {
        CheckWritable();
        byte[] name = string.IsNullOrEmpty(backingFileName) ? [] : Encoding.UTF8.GetBytes(backingFileName);
        long room = Math.Min((long)Header.HeaderClusters * Geometry.ClusterSize - QedHeader.SizeBytes, QedLimits.MaxBackingFileNameBytes);
        if (name.Length > room)
        {
            throw new UnsupportedFeatureException("the backing file name does not fit in the image header", HostFile.Path);
        }

        QedFeatures features = Header.Features & ~(QedFeatures.BackingFile | QedFeatures.BackingFormatNoProbe);
        if (name.Length > 0)
        {
            features |= QedFeatures.BackingFile;
            if (backingFormat == "raw")
            {
                features |= QedFeatures.BackingFormatNoProbe;
            }
        }

        QedHeader header = Header with
        {
            Features = features,
            BackingFileNameOffset = name.Length > 0 ? QedHeader.SizeBytes : 0u,
            BackingFileNameSize = (uint)name.Length,
        };
        byte[] buffer = new byte[QedHeader.SizeBytes + name.Length];
        header.Write(buffer);
        name.CopyTo(buffer.AsSpan(QedHeader.SizeBytes));
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await HostFile.WriteAsync(0, buffer, cancellationToken).ConfigureAwait(false);
            await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
            Header = header;
        }
        finally
        {
            _lock.Release();
        }
    }
}

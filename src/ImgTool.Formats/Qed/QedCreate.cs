using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qed;

/// <summary>
/// `create -f qed` as QEMU's bdrv_qed_co_create lays it out: a one-cluster header with the backing file name right
/// after the 64 header bytes, then the zeroed L1 table at offset cluster_size. The size is rounded up to a whole
/// sector; cluster_size, table_size and the size are held to QEMU's limits, with its messages.
/// </summary>
internal static class QedCreate
{
    public static async ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken)
    {
        long clusterSize = request.Options.GetSize("cluster_size") ?? QedLimits.DefaultClusterSize;
        long tableSize = request.Options.GetSize("table_size") ?? QedLimits.DefaultTableSize;
        if (clusterSize < 0 || !QedGeometry.IsValidClusterSize((ulong)clusterSize))
        {
            throw new InvalidOptionException($"QED cluster size must be within range [{QedLimits.MinClusterSize}, {QedLimits.MaxClusterSize}] and power of 2", file.Path);
        }

        if (tableSize < 0 || !QedGeometry.IsValidTableSize((ulong)tableSize))
        {
            throw new InvalidOptionException($"QED table size must be within range [{QedLimits.MinTableSize}, {QedLimits.MaxTableSize}] and power of 2", file.Path);
        }

        // QEMU silently rounds the size up to a whole sector.
        long sizeBytes = (request.SizeBytes + QedLimits.SectorBytes - 1) / QedLimits.SectorBytes * QedLimits.SectorBytes;
        ulong maxSize = QedGeometry.QemuMaxImageSize((uint)clusterSize, (uint)tableSize);
        if (request.SizeBytes < 0 || (ulong)sizeBytes > maxSize)
        {
            throw new InvalidOptionException($"QED image size must be a non-zero multiple of cluster size and less than {maxSize} bytes", file.Path);
        }

        QedFeatures features = QedFeatures.None;
        byte[] backingName = [];
        if (request.BackingFile is { } backing)
        {
            backingName = Encoding.UTF8.GetBytes(backing);
            if (backingName.Length == 0 || backingName.Contains((byte)0))
            {
                throw new InvalidOptionException("the backing file name must be non-empty and contain no NUL byte", file.Path);
            }

            // The name must fit in the header cluster (QEMU would let it run into the L1 table and make an image it cannot open).
            int room = Math.Min(QedLimits.MaxBackingFileNameBytes, (int)clusterSize - QedHeader.SizeBytes);
            if (backingName.Length > room)
            {
                throw new InvalidOptionException($"the backing file name is too long for a QED header ({backingName.Length} bytes, at most {room} with cluster_size {clusterSize})", file.Path);
            }

            features |= QedFeatures.BackingFile;

            // The only backing format QED can record: raw, as "do not probe" (QEMU's qed_fmt_is_raw).
            if (request.BackingFormat == "raw")
            {
                features |= QedFeatures.BackingFormatNoProbe;
            }
        }

        var header = new QedHeader(
            (uint)clusterSize,
            (uint)tableSize,
            HeaderClusters: 1,
            features,
            CompatFeatures: 0,
            AutoclearFeatures: 0,
            L1TableOffset: (ulong)clusterSize,
            ImageSize: (ulong)sizeBytes,
            BackingFileNameOffset: backingName.Length > 0 ? QedHeader.SizeBytes : 0u,
            BackingFileNameSize: (uint)backingName.Length);

        byte[] head = new byte[QedHeader.SizeBytes + backingName.Length];
        header.Write(head);
        backingName.CopyTo(head, QedHeader.SizeBytes);
        file.SetLength(0);
        await file.WriteAsync(0, head, cancellationToken).ConfigureAwait(false);

        // QEMU writes the L1 table's zeros; zeroing the range allocates it the same way without a 1 GiB buffer.
        file.ZeroRange(clusterSize, clusterSize * tableSize);
    }
}

using System.Buffers.Binary;
using System.Globalization;
using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Filesystems.ExFat;

/// <summary>exFAT (Microsoft's exFAT specification, 3.1 and 7.3): the main boot sector gives the volume serial and
/// revision; the label is the volume-label entry (type 0x83) of the root directory, followed along the FAT.</summary>
internal sealed class ExFatProbe : IFilesystemProbe
{
    private const int FatOffsetField = 80;
    private const int ClusterHeapOffsetField = 88;
    private const int ClusterCountField = 92;
    private const int RootClusterField = 96;
    private const int SerialField = 100;
    private const int RevisionField = 104;
    private const int VolumeLengthField = 72;
    private const int BytesPerSectorShiftField = 108;
    private const int SectorsPerClusterShiftField = 109;
    private const byte VolumeLabelEntry = 0x83;
    private const int EntryBytes = 32;

    /// <summary>A label is among the first entries; a root directory is not followed further than this.</summary>
    private const int MaxRootClusters = 64;

    public async ValueTask<FilesystemInfo?> ProbeAsync(ReadOnlyMemory<byte> head, DiskView volume, CancellationToken cancellationToken)
    {
        if (!head.Span[3..].StartsWith("EXFAT   "u8))
        {
            return null;
        }

        byte[] b = head[..512].ToArray();
        int sectorShift = b[BytesPerSectorShiftField];
        int clusterShift = b[SectorsPerClusterShiftField];
        if (sectorShift is < 9 or > 12 || clusterShift > 25 - sectorShift)
        {
            return null;
        }

        int sectorBytes = 1 << sectorShift;
        long clusterBytes = 1L << (sectorShift + clusterShift);
        long fatOffset = (long)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(FatOffsetField)) * sectorBytes;
        long heapOffset = (long)BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(ClusterHeapOffsetField)) * sectorBytes;
        uint clusterCount = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(ClusterCountField));
        uint cluster = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(RootClusterField));
        ulong volumeSectors = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(VolumeLengthField));
        string? label = null;
        try
        {
            label = await ReadLabelAsync(volume, fatOffset, heapOffset, clusterBytes, clusterCount, cluster, cancellationToken).ConfigureAwait(false);
        }
        catch (FilesystemCorruptException)
        {
            // No label, rather than no file system.
        }

        return new FilesystemInfo(
            "exfat",
            "filesystem",
            label,
            Text.Serial32(BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(SerialField))),
            string.Create(CultureInfo.InvariantCulture, $"{b[RevisionField + 1]}.{b[RevisionField]}"),
            sectorBytes,
            volumeSectors < (ulong)(long.MaxValue >> 12) ? (long)volumeSectors * sectorBytes : null);
    }

    private static async ValueTask<string?> ReadLabelAsync(DiskView volume, long fatOffset, long heapOffset, long clusterBytes, uint clusterCount, uint cluster, CancellationToken cancellationToken)
    {
        for (int visited = 0; visited < MaxRootClusters && cluster >= 2 && cluster < clusterCount + 2; visited++)
        {
            byte[] data = await volume.ReadBytesAsync(heapOffset + ((cluster - 2) * clusterBytes), (int)clusterBytes, "exFAT root directory", cancellationToken).ConfigureAwait(false);
            for (int e = 0; e + EntryBytes <= data.Length; e += EntryBytes)
            {
                byte type = data[e];
                if (type == 0)
                {
                    return null;
                }

                if (type == VolumeLabelEntry)
                {
                    int chars = Math.Min((int)data[e + 1], 11);
                    return Text.Utf16(data.AsSpan(e + 2, chars * 2));
                }
            }

            byte[] next = await volume.ReadBytesAsync(fatOffset + (cluster * 4L), 4, "exFAT FAT", cancellationToken).ConfigureAwait(false);
            cluster = BinaryPrimitives.ReadUInt32LittleEndian(next);
        }

        return null;
    }
}

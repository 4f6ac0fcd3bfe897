using System.Buffers.Binary;
using System.Globalization;
using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Filesystems.Ntfs;

/// <summary>NTFS: the boot sector gives the 64-bit volume serial (blkid's UUID, 16 hex digits) and where the MFT is;
/// the label and NTFS version are attributes of MFT record 3, $Volume ($VOLUME_NAME 0x60, $VOLUME_INFORMATION 0x70).</summary>
internal sealed class NtfsProbe : IFilesystemProbe
{
    private const int BytesPerSectorField = 0x0B;
    private const int SectorsPerClusterField = 0x0D;
    private const int TotalSectorsField = 0x28;
    private const int MftClusterField = 0x30;
    private const int ClustersPerRecordField = 0x40;
    private const int SerialField = 0x48;
    private const int VolumeRecordNumber = 3;
    private const uint VolumeNameAttribute = 0x60;
    private const uint VolumeInformationAttribute = 0x70;
    private const uint EndMarker = 0xFFFFFFFF;
    private const int MaxRecordBytes = 65536;

    public async ValueTask<FilesystemInfo?> ProbeAsync(ReadOnlyMemory<byte> head, DiskView volume, CancellationToken cancellationToken)
    {
        if (!head.Span[3..].StartsWith("NTFS    "u8))
        {
            return null;
        }

        byte[] b = head[..512].ToArray();
        int sectorBytes = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(BytesPerSectorField));
        int spc = b[SectorsPerClusterField];
        long clusterBytes = spc > 0x80 ? sectorBytes * (1L << Math.Min(256 - spc, 20)) : (long)sectorBytes * spc;
        sbyte perRecord = (sbyte)b[ClustersPerRecordField];
        long recordBytes = perRecord < 0 ? 1L << Math.Min(-perRecord, 20) : perRecord * clusterBytes;
        ulong mftCluster = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(MftClusterField));
        long totalSectors = BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(TotalSectorsField));
        string uuid = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(SerialField)).ToString("X16", CultureInfo.InvariantCulture);
        string? label = null;
        string? version = null;
        if (sectorBytes is >= 256 and <= 4096 && clusterBytes > 0 && recordBytes is >= 256 and <= MaxRecordBytes && mftCluster < (ulong)(volume.LengthBytes / clusterBytes))
        {
            try
            {
                byte[] record = await volume.ReadBytesAsync(((long)mftCluster * clusterBytes) + (VolumeRecordNumber * recordBytes), (int)recordBytes, "NTFS $Volume record", cancellationToken).ConfigureAwait(false);
                (label, version) = ReadVolumeRecord(record, sectorBytes);
            }
            catch (FilesystemCorruptException)
            {
                // The serial still identifies the volume.
            }
        }

        return new FilesystemInfo(
            "ntfs",
            "filesystem",
            label,
            uuid,
            BlockSize: sectorBytes,
            SizeBytes: totalSectors > 0 && totalSectors < long.MaxValue / 4096 ? totalSectors * sectorBytes : null,
            Details: version is null ? null : [new("ntfs-version", version)]);
    }

    /// <summary>Undoes the update-sequence fixups (the last two bytes of every sector were swapped for a check value)
    /// and reads the two attributes.</summary>
    private static (string? Label, string? Version) ReadVolumeRecord(byte[] record, int sectorBytes)
    {
        if (!record.AsSpan().StartsWith("FILE"u8))
        {
            return (null, null);
        }

        int usaOffset = BinaryPrimitives.ReadUInt16LittleEndian(record.AsSpan(4));
        int usaCount = BinaryPrimitives.ReadUInt16LittleEndian(record.AsSpan(6));
        for (int i = 1; i < usaCount; i++)
        {
            int fix = (i * sectorBytes) - 2;
            int source = usaOffset + (2 * i);
            if (fix + 2 > record.Length || source + 2 > record.Length)
            {
                return (null, null);
            }

            record[fix] = record[source];
            record[fix + 1] = record[source + 1];
        }

        string? label = null;
        string? version = null;
        int offset = BinaryPrimitives.ReadUInt16LittleEndian(record.AsSpan(0x14));
        while (offset + 24 <= record.Length)
        {
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(record.AsSpan(offset));
            int length = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(record.AsSpan(offset + 4)), int.MaxValue);
            if (type == EndMarker || length < 24 || offset + length > record.Length)
            {
                break;
            }

            bool resident = record[offset + 8] == 0;
            int valueLength = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(record.AsSpan(offset + 0x10)), int.MaxValue);
            int valueOffset = BinaryPrimitives.ReadUInt16LittleEndian(record.AsSpan(offset + 0x14));
            if (resident && valueOffset + valueLength <= length)
            {
                ReadOnlySpan<byte> value = record.AsSpan(offset + valueOffset, valueLength);
                if (type == VolumeNameAttribute)
                {
                    label = Text.Utf16(value);
                }
                else if (type == VolumeInformationAttribute && value.Length >= 10)
                {
                    version = string.Create(CultureInfo.InvariantCulture, $"{value[8]}.{value[9]}");
                }
            }

            offset += length;
        }

        return (label, version);
    }
}

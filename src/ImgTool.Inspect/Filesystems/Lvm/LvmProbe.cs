using System.Buffers.Binary;
using System.Text;
using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Filesystems.Lvm;

/// <summary>An LVM2 physical volume (lib/format_text/layout.h): a "LABELONE" label in one of the first four sectors
/// pointing to the PV header (its 32-character UUID, then its data and metadata areas). The volume group's name is the
/// first word of the text metadata that the first metadata area's header points to.</summary>
internal sealed class LvmProbe : IFilesystemProbe
{
    private const int SectorBytes = 512;
    private const int LabelSectors = 4;
    private const int ContentOffsetField = 20;
    private const int TypeField = 24;
    private const int UuidChars = 32;
    private const int MaxAreas = 16;
    private const int MaxMetadataBytes = 1 << 20;

    public async ValueTask<FilesystemInfo?> ProbeAsync(ReadOnlyMemory<byte> head, DiskView volume, CancellationToken cancellationToken)
    {
        for (int sector = 0; sector < LabelSectors; sector++)
        {
            ReadOnlySpan<byte> label = head.Span.Slice(sector * SectorBytes, SectorBytes);
            if (!label.StartsWith("LABELONE"u8) || !label[TypeField..].StartsWith("LVM2 001"u8))
            {
                continue;
            }

            int pvOffset = (int)BinaryPrimitives.ReadUInt32LittleEndian(label[ContentOffsetField..]);
            if (pvOffset is < 32 or > SectorBytes - UuidChars - 8)
            {
                return null;
            }

            ReadOnlySpan<byte> pv = label[pvOffset..];
            string raw = Encoding.ASCII.GetString(pv[..UuidChars]);
            string uuid = $"{raw[..6]}-{raw[6..10]}-{raw[10..14]}-{raw[14..18]}-{raw[18..22]}-{raw[22..26]}-{raw[26..]}";
            long deviceBytes = BinaryPrimitives.ReadInt64LittleEndian(pv[UuidChars..]);
            string? vg = null;
            try
            {
                vg = await ReadVolumeGroupNameAsync(volume, head.Slice((sector * SectorBytes) + pvOffset + UuidChars + 8), cancellationToken).ConfigureAwait(false);
            }
            catch (FilesystemCorruptException)
            {
                // A PV without readable metadata is still a PV.
            }

            return new FilesystemInfo(
                "LVM2_member",
                "raid",
                Uuid: uuid,
                Version: "LVM2 001",
                SizeBytes: deviceBytes > 0 ? deviceBytes : null,
                Details: vg is null ? null : [new("vg-name", vg)]);
        }

        return null;
    }

    /// <summary>The areas list: data areas up to a zero entry, then metadata areas up to a zero entry (16 bytes each).</summary>
    private static async ValueTask<string?> ReadVolumeGroupNameAsync(DiskView volume, ReadOnlyMemory<byte> areas, CancellationToken cancellationToken)
    {
        int position = 0;
        for (int list = 0; list < 2; list++)
        {
            for (int i = 0; i < MaxAreas && position + 16 <= areas.Length; i++)
            {
                long offset = BinaryPrimitives.ReadInt64LittleEndian(areas.Span[position..]);
                position += 16;
                if (offset == 0)
                {
                    break;
                }

                if (list == 1)
                {
                    return await ReadMetadataAreaAsync(volume, offset, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        return null;
    }

    /// <summary>mda_header: checksum, magic " LVM2 x[5A%r0N*&gt;", version, start, size, then raw_locn {offset, size, checksum, flags}.</summary>
    private static async ValueTask<string?> ReadMetadataAreaAsync(DiskView volume, long areaOffset, CancellationToken cancellationToken)
    {
        byte[] header = await volume.ReadBytesAsync(areaOffset, SectorBytes, "LVM metadata area header", cancellationToken).ConfigureAwait(false);
        if (!header.AsSpan(4).StartsWith(" LVM2 x[5A%r0N*>"u8))
        {
            return null;
        }

        long textOffset = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(40));
        long textBytes = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(48));
        if (textOffset <= 0 || textBytes is <= 0 or > MaxMetadataBytes)
        {
            return null;
        }

        byte[] text = await volume.ReadBytesAsync(areaOffset + textOffset, (int)Math.Min(textBytes, 4096), "LVM metadata", cancellationToken).ConfigureAwait(false);
        string first = Encoding.ASCII.GetString(text);
        int end = first.IndexOfAny([' ', '{', '\n']);
        return end > 0 ? first[..end] : null;
    }
}

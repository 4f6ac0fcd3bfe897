using System.Buffers.Binary;
using System.Text;
using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Filesystems.Iso9660;

/// <summary>ISO 9660 (ECMA-119 8.4): the primary volume descriptor in sector 16 of 2048 bytes. blkid makes its UUID
/// from the volume creation date (8.4.26), "YYYY-MM-DD-HH-MM-SS-CC".</summary>
internal sealed class Iso9660Probe : IFilesystemProbe
{
    private const int DescriptorOffset = 16 * 2048;
    private const int VolumeIdField = 40;
    private const int VolumeSpaceField = 80;
    private const int LogicalBlockSizeField = 128;
    private const int CreationDateField = 813;

    public ValueTask<FilesystemInfo?> ProbeAsync(ReadOnlyMemory<byte> head, DiskView volume, CancellationToken cancellationToken)
    {
        ReadOnlySpan<byte> pvd = head.Span.Slice(DescriptorOffset, 2048);
        if (pvd[0] != 1 || !pvd[1..].StartsWith("CD001"u8))
        {
            return ValueTask.FromResult<FilesystemInfo?>(null);
        }

        string date = Encoding.ASCII.GetString(pvd.Slice(CreationDateField, 16));
        string? uuid = date.All(char.IsAsciiDigit) && date.Any(c => c != '0')
            ? $"{date[..4]}-{date[4..6]}-{date[6..8]}-{date[8..10]}-{date[10..12]}-{date[12..14]}-{date[14..16]}"
            : null;
        int blockSize = BinaryPrimitives.ReadUInt16LittleEndian(pvd[LogicalBlockSizeField..]);
        long blocks = BinaryPrimitives.ReadUInt32LittleEndian(pvd[VolumeSpaceField..]);
        return ValueTask.FromResult<FilesystemInfo?>(new FilesystemInfo(
            "iso9660",
            "filesystem",
            Text.NulTerminated(pvd.Slice(VolumeIdField, 32), trimSpaces: true),
            uuid,
            BlockSize: blockSize,
            SizeBytes: blocks * blockSize));
    }
}

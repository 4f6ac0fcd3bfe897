using System.Buffers.Binary;
using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Filesystems.Btrfs;

/// <summary>btrfs: the primary superblock at 64 KiB ("_BHRfS_M"); UUID is the file system's fsid,
/// UUID_SUB the device's own UUID in the embedded dev_item.</summary>
internal sealed class BtrfsProbe : IFilesystemProbe
{
    private const int SuperblockOffset = 0x10000;
    private const int FsidField = 0x20;
    private const int MagicField = 0x40;
    private const int TotalBytesField = 0x70;
    private const int SectorSizeField = 0x90;
    private const int DevItemField = 0xC9;
    private const int DevItemUuidField = DevItemField + 66; // devid, sizes, io_align/width, sector_size, type, generation, start, group, seek, bandwidth
    private const int LabelField = 0x12B;

    public ValueTask<FilesystemInfo?> ProbeAsync(ReadOnlyMemory<byte> head, DiskView volume, CancellationToken cancellationToken)
    {
        ReadOnlySpan<byte> sb = head.Span[SuperblockOffset..];
        if (!sb[MagicField..].StartsWith("_BHRfS_M"u8))
        {
            return ValueTask.FromResult<FilesystemInfo?>(null);
        }

        ulong total = BinaryPrimitives.ReadUInt64LittleEndian(sb[TotalBytesField..]);
        return ValueTask.FromResult<FilesystemInfo?>(new FilesystemInfo(
            "btrfs",
            "filesystem",
            Text.NulTerminated(sb.Slice(LabelField, 256)),
            Text.ByteOrderUuid(sb.Slice(FsidField, 16)),
            BlockSize: (int)BinaryPrimitives.ReadUInt32LittleEndian(sb[SectorSizeField..]),
            SizeBytes: total <= long.MaxValue ? (long)total : null,
            UuidSub: Text.ByteOrderUuid(sb.Slice(DevItemUuidField, 16))));
    }
}

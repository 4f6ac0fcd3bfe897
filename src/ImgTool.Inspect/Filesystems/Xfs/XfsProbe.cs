using System.Buffers.Binary;
using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Filesystems.Xfs;

/// <summary>XFS: the big-endian superblock at byte 0 (xfs_sb, "XFSB"). blkid's BLOCK_SIZE is the sector size.</summary>
internal sealed class XfsProbe : IFilesystemProbe
{
    private const int BlockSizeField = 4;
    private const int DataBlocksField = 8;
    private const int UuidField = 32;
    private const int SectorSizeField = 102;
    private const int NameField = 108;

    public ValueTask<FilesystemInfo?> ProbeAsync(ReadOnlyMemory<byte> head, DiskView volume, CancellationToken cancellationToken)
    {
        ReadOnlySpan<byte> sb = head.Span;
        if (!sb.StartsWith("XFSB"u8))
        {
            return ValueTask.FromResult<FilesystemInfo?>(null);
        }

        uint blockSize = BinaryPrimitives.ReadUInt32BigEndian(sb[BlockSizeField..]);
        ulong blocks = BinaryPrimitives.ReadUInt64BigEndian(sb[DataBlocksField..]);
        return ValueTask.FromResult<FilesystemInfo?>(new FilesystemInfo(
            "xfs",
            "filesystem",
            Text.NulTerminated(sb.Slice(NameField, 12)),
            Text.ByteOrderUuid(sb.Slice(UuidField, 16)),
            BlockSize: BinaryPrimitives.ReadUInt16BigEndian(sb[SectorSizeField..]),
            SizeBytes: blockSize <= 65536 && blocks < long.MaxValue / 65536 ? (long)blocks * blockSize : null));
    }
}

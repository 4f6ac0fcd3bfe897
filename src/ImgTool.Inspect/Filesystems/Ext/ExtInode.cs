using System.Buffers.Binary;

namespace ImgTool.Inspect.Filesystems.Ext;

/// <summary>The fields of an ext inode read here (struct ext4_inode), and its in-inode extended attributes.</summary>
internal sealed record ExtInode(
    uint Number,
    uint Mode,
    uint Uid,
    uint Gid,
    long SizeBytes,
    uint LinkCount,
    long BlockCount512,
    uint Flags,
    long ModifiedSeconds,
    ulong FileAcl,
    byte[] Block,
    byte[]? InlineDataXattr)
{
    public const uint FlagIndex = 0x1000;
    public const uint FlagExtents = 0x80000;
    public const uint FlagHugeFile = 0x40000;
    public const uint FlagInlineData = 0x10000000;
    public const int BlockFieldBytes = 60;

    private const int ModeField = 0x0;
    private const int UidField = 0x2;
    private const int SizeLoField = 0x4;
    private const int MtimeField = 0x10;
    private const int GidField = 0x18;
    private const int LinksField = 0x1A;
    private const int BlocksLoField = 0x1C;
    private const int FlagsField = 0x20;
    private const int BlockField = 0x28;
    private const int FileAclLoField = 0x68;
    private const int SizeHighField = 0x6C;
    private const int BlocksHighField = 0x74;
    private const int FileAclHighField = 0x76;
    private const int UidHighField = 0x78;
    private const int GidHighField = 0x7A;
    private const int GoodOldInodeBytes = 128;
    private const int ExtraIsizeField = 0x80;
    private const int MtimeExtraField = 0x88;
    private const uint XattrMagic = 0xEA020000;
    private const byte XattrIndexSystem = 7;

    public bool UsesExtents => (Flags & FlagExtents) != 0;

    public bool HasInlineData => (Flags & FlagInlineData) != 0;

    public static ExtInode Read(uint number, ReadOnlySpan<byte> raw)
    {
        uint mode = BinaryPrimitives.ReadUInt16LittleEndian(raw[ModeField..]);
        long size = BinaryPrimitives.ReadUInt32LittleEndian(raw[SizeLoField..]) | ((long)BinaryPrimitives.ReadUInt32LittleEndian(raw[SizeHighField..]) << 32);
        long mtime = BinaryPrimitives.ReadInt32LittleEndian(raw[MtimeField..]);
        byte[]? inline = null;
        if (raw.Length > GoodOldInodeBytes + 2)
        {
            int extra = BinaryPrimitives.ReadUInt16LittleEndian(raw[ExtraIsizeField..]);
            if (extra >= 8 && GoodOldInodeBytes + extra <= raw.Length)
            {
                // The extra epoch bits extend the 32-bit seconds past 2038.
                mtime += (long)(BinaryPrimitives.ReadUInt32LittleEndian(raw[MtimeExtraField..]) & 3) << 32;
            }

            if (GoodOldInodeBytes + extra + 4 <= raw.Length)
            {
                inline = FindInlineDataXattr(raw[(GoodOldInodeBytes + extra)..]);
            }
        }

        return new ExtInode(
            number,
            mode,
            BinaryPrimitives.ReadUInt16LittleEndian(raw[UidField..]) | ((uint)BinaryPrimitives.ReadUInt16LittleEndian(raw[UidHighField..]) << 16),
            BinaryPrimitives.ReadUInt16LittleEndian(raw[GidField..]) | ((uint)BinaryPrimitives.ReadUInt16LittleEndian(raw[GidHighField..]) << 16),
            size,
            BinaryPrimitives.ReadUInt16LittleEndian(raw[LinksField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(raw[BlocksLoField..]) | ((long)BinaryPrimitives.ReadUInt16LittleEndian(raw[BlocksHighField..]) << 32),
            BinaryPrimitives.ReadUInt32LittleEndian(raw[FlagsField..]),
            mtime,
            BinaryPrimitives.ReadUInt32LittleEndian(raw[FileAclLoField..]) | ((ulong)BinaryPrimitives.ReadUInt16LittleEndian(raw[FileAclHighField..]) << 32),
            raw.Slice(BlockField, BlockFieldBytes).ToArray(),
            inline);
    }

    /// <summary>The value of "system.data" among the in-inode attributes: where inline data longer than i_block continues.</summary>
    private static byte[]? FindInlineDataXattr(ReadOnlySpan<byte> area)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(area) != XattrMagic)
        {
            return null;
        }

        ReadOnlySpan<byte> entries = area[4..];
        for (int e = 0; e + 16 <= entries.Length;)
        {
            int nameLength = entries[e];
            byte index = entries[e + 1];
            if (nameLength == 0 && index == 0 && BinaryPrimitives.ReadUInt32LittleEndian(entries[(e + 2)..]) == 0)
            {
                break;
            }

            int valueOffset = BinaryPrimitives.ReadUInt16LittleEndian(entries[(e + 2)..]);
            int valueSize = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(entries[(e + 8)..]), int.MaxValue);
            if (e + 16 + nameLength > entries.Length)
            {
                break;
            }

            if (index == XattrIndexSystem && entries.Slice(e + 16, nameLength).SequenceEqual("data"u8))
            {
                return valueOffset + valueSize <= entries.Length ? entries.Slice(valueOffset, valueSize).ToArray() : null;
            }

            e += (16 + nameLength + 3) & ~3;
        }

        return null;
    }
}

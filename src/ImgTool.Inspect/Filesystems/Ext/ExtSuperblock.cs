using System.Buffers.Binary;

namespace ImgTool.Inspect.Filesystems.Ext;

/// <summary>The ext2/3/4 superblock fields read here (the kernel's struct ext4_super_block, 1024 bytes at byte 1024).</summary>
internal readonly record struct ExtSuperblock(
    uint InodesCount,
    ulong BlocksCount,
    uint FirstDataBlock,
    int BlockSizeBytes,
    uint BlocksPerGroup,
    uint InodesPerGroup,
    uint RevLevel,
    ushort MinorRevLevel,
    int InodeSizeBytes,
    uint FeatureCompat,
    uint FeatureIncompat,
    uint FeatureRoCompat,
    int DescriptorSizeBytes,
    uint Flags,
    byte[] Uuid,
    string? Label)
{
    public const int OffsetBytes = 1024;
    public const int SizeBytes = 1024;
    public const ushort Magic = 0xEF53;

    private const int InodesCountField = 0x0;
    private const int BlocksCountLoField = 0x4;
    private const int FirstDataBlockField = 0x14;
    private const int LogBlockSizeField = 0x18;
    private const int BlocksPerGroupField = 0x20;
    private const int InodesPerGroupField = 0x28;
    private const int MagicField = 0x38;
    private const int MinorRevLevelField = 0x3E;
    private const int RevLevelField = 0x4C;
    private const int InodeSizeField = 0x58;
    private const int FeatureCompatField = 0x5C;
    private const int FeatureIncompatField = 0x60;
    private const int FeatureRoCompatField = 0x64;
    private const int UuidField = 0x68;
    private const int VolumeNameField = 0x78;
    private const int DescSizeField = 0xFE;
    private const int BlocksCountHiField = 0x150;
    private const int FlagsField = 0x160;

    public const uint CompatHasJournal = 0x4;
    public const uint IncompatFiletype = 0x2;
    public const uint IncompatRecover = 0x4;
    public const uint IncompatJournalDev = 0x8;
    public const uint IncompatMetaBg = 0x10;
    public const uint IncompatExtents = 0x40;
    public const uint Incompat64Bit = 0x80;
    public const uint IncompatInlineData = 0x8000;
    public const uint RoCompatSupportedByExt2 = 0x1 | 0x2 | 0x4; // sparse_super, large_file, btree_dir
    public const uint FlagsTestFilesystem = 0x4;

    public static bool HasMagic(ReadOnlySpan<byte> superblock) =>
        superblock.Length >= SizeBytes && BinaryPrimitives.ReadUInt16LittleEndian(superblock[MagicField..]) == Magic;

    public bool Is64Bit => (FeatureIncompat & Incompat64Bit) != 0;

    public static ExtSuperblock Read(ReadOnlySpan<byte> sb)
    {
        uint logBlock = BinaryPrimitives.ReadUInt32LittleEndian(sb[LogBlockSizeField..]);
        uint revLevel = BinaryPrimitives.ReadUInt32LittleEndian(sb[RevLevelField..]);
        uint incompat = BinaryPrimitives.ReadUInt32LittleEndian(sb[FeatureIncompatField..]);
        ulong blocks = BinaryPrimitives.ReadUInt32LittleEndian(sb[BlocksCountLoField..]);
        if ((incompat & Incompat64Bit) != 0)
        {
            blocks |= (ulong)BinaryPrimitives.ReadUInt32LittleEndian(sb[BlocksCountHiField..]) << 32;
        }

        return new ExtSuperblock(
            BinaryPrimitives.ReadUInt32LittleEndian(sb[InodesCountField..]),
            blocks,
            BinaryPrimitives.ReadUInt32LittleEndian(sb[FirstDataBlockField..]),
            logBlock <= 6 ? 1024 << (int)logBlock : 0, // 64 KiB is the largest block ext4 defines
            BinaryPrimitives.ReadUInt32LittleEndian(sb[BlocksPerGroupField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(sb[InodesPerGroupField..]),
            revLevel,
            BinaryPrimitives.ReadUInt16LittleEndian(sb[MinorRevLevelField..]),
            revLevel == 0 ? 128 : BinaryPrimitives.ReadUInt16LittleEndian(sb[InodeSizeField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(sb[FeatureCompatField..]),
            incompat,
            BinaryPrimitives.ReadUInt32LittleEndian(sb[FeatureRoCompatField..]),
            (incompat & Incompat64Bit) != 0 ? BinaryPrimitives.ReadUInt16LittleEndian(sb[DescSizeField..]) : 32,
            BinaryPrimitives.ReadUInt32LittleEndian(sb[FlagsField..]),
            sb.Slice(UuidField, 16).ToArray(),
            Disk.Text.NulTerminated(sb.Slice(VolumeNameField, 16)));
    }
}

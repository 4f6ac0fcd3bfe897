using System.Buffers.Binary;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Parallels;

/// <summary>
/// The 64-byte header of a Parallels expandable image (QEMU docs/interop/parallels.txt, "Header"), little-endian:
/// magic "WithoutFreeSpace" (BAT entries in sectors, 32-bit sector count) or "WithouFreSpacExt" (BAT entries in
/// clusters), version 2, geometry, cluster size in sectors ("tracks"), BAT entries, disk size in sectors, the in-use
/// mark, the data area offset, flags and the format extension offset (sectors). The BAT follows at byte 64.
/// </summary>
internal readonly record struct ParallelsHeader(
    bool ExtendedMagic,
    uint Version,
    uint Heads,
    uint Cylinders,
    uint Tracks,
    uint BatEntries,
    ulong SectorCount,
    uint InUse,
    uint DataOffsetSectors,
    uint Flags,
    ulong ExtensionOffsetSectors)
{
    public const int SizeBytes = ExtensionOffsetField + sizeof(ulong);
    public const uint SupportedVersion = 2;

    /// <summary>in_use while software has the image open read-write; a file left so was not closed cleanly.</summary>
    public const uint InUseOpen = 0x746F6E59;

    public static ReadOnlySpan<byte> Magic => "WithoutFreeSpace"u8;

    public static ReadOnlySpan<byte> ExtendedMagicBytes => "WithouFreSpacExt"u8;

    private const int MagicField = 0;
    private const int MagicBytes = 16;
    private const int VersionField = MagicField + MagicBytes;
    private const int HeadsField = VersionField + sizeof(uint);
    private const int CylindersField = HeadsField + sizeof(uint);
    private const int TracksField = CylindersField + sizeof(uint);
    private const int BatEntriesField = TracksField + sizeof(uint);
    private const int SectorCountField = BatEntriesField + sizeof(uint);
    private const int InUseField = SectorCountField + sizeof(ulong);
    private const int DataOffsetField = InUseField + sizeof(uint);
    private const int FlagsField = DataOffsetField + sizeof(uint);
    private const int ExtensionOffsetField = FlagsField + sizeof(uint);

    /// <summary>Cluster size in bytes.</summary>
    public long ClusterBytes => (long)Tracks * ParallelsLimits.SectorBytes;

    /// <summary>What a BAT entry counts in: sectors for the old magic, clusters for the extended one.</summary>
    public long BatUnitBytes => ExtendedMagic ? ClusterBytes : ParallelsLimits.SectorBytes;

    /// <summary>The disk size in sectors; "WithoutFreeSpace" images use only the low 32 bits.</summary>
    public ulong EffectiveSectorCount => ExtendedMagic ? SectorCount : SectorCount & 0xffffffff;

    /// <summary>QEMU's parallels_probe: either magic and version 2.</summary>
    public static bool Matches(ReadOnlySpan<byte> head) =>
        head.Length >= SizeBytes
        && (head[..MagicBytes].SequenceEqual(Magic) || head[..MagicBytes].SequenceEqual(ExtendedMagicBytes))
        && BinaryPrimitives.ReadUInt32LittleEndian(head[VersionField..]) == SupportedVersion;

    public static ParallelsHeader Read(ReadOnlySpan<byte> bytes, string? fileName)
    {
        if (!Matches(bytes))
        {
            throw new ImageFormatException("image not in Parallels format", fileName);
        }

        var header = new ParallelsHeader(
            bytes[..MagicBytes].SequenceEqual(ExtendedMagicBytes),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[VersionField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[HeadsField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[CylindersField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[TracksField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[BatEntriesField..]),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[SectorCountField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[InUseField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[DataOffsetField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[FlagsField..]),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[ExtensionOffsetField..]));
        if (header.Tracks == 0)
        {
            throw new ImageFormatException("invalid image: zero sectors per track (cluster size 0)", fileName);
        }

        if (header.Tracks > ParallelsLimits.MaxClusterSectors)
        {
            throw new ImageFormatException($"invalid image: cluster of {header.Tracks} sectors is too big (at most {ParallelsLimits.MaxClusterSectors})", fileName);
        }

        if (header.BatEntries > ParallelsLimits.MaxBatEntries)
        {
            throw new ImageFormatException($"catalog too large: {header.BatEntries} BAT entries (at most {ParallelsLimits.MaxBatEntries})", fileName);
        }

        if (header.EffectiveSectorCount > ParallelsLimits.MaxSectorCount)
        {
            throw new ImageFormatException($"disk size of {header.EffectiveSectorCount} sectors is larger than the largest supported ({ParallelsLimits.MaxSectorCount})", fileName);
        }

        return header;
    }

    /// <summary>Writes the header (tests build images with it).</summary>
    public void Write(Span<byte> destination)
    {
        destination[..SizeBytes].Clear();
        (ExtendedMagic ? ExtendedMagicBytes : Magic).CopyTo(destination);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[VersionField..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[HeadsField..], Heads);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[CylindersField..], Cylinders);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[TracksField..], Tracks);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[BatEntriesField..], BatEntries);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[SectorCountField..], SectorCount);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[InUseField..], InUse);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[DataOffsetField..], DataOffsetSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[FlagsField..], Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[ExtensionOffsetField..], ExtensionOffsetSectors);
    }
}

using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vhd;

/// <summary>The kinds of VHD disk ("Disk Type" of the hard disk footer, VHD specification 1.0).</summary>
internal enum VhdDiskType : uint
{
    Fixed = 2,
    Dynamic = 3,
    Differencing = 4,
}

/// <summary>
/// The 512-byte hard disk footer (Microsoft "Virtual Hard Disk Image Format Specification" 1.0, "Hard Disk Footer Format").
/// All fields are big-endian. A fixed disk has it only at the end of the file; dynamic and differencing disks also keep a
/// copy at offset 0 (the spec's "mirror"), which is read first.
/// </summary>
internal readonly record struct VhdFooter(
    uint Features,
    uint FileFormatVersion,
    ulong DataOffset,
    uint TimeStamp,
    uint CreatorApplication,
    uint CreatorVersion,
    uint CreatorHostOs,
    ulong OriginalSize,
    ulong CurrentSize,
    ushort Cylinders,
    byte Heads,
    byte SectorsPerTrack,
    VhdDiskType DiskType,
    uint Checksum,
    Guid UniqueId,
    byte SavedState,
    byte[] Reserved)
{
    public const int SizeBytes = 512;
    public const string CookieText = "conectix";

    // Field offsets, each derived from the previous one (spec table order).
    public const int Cookie = 0;
    public const int FeaturesOffset = Cookie + 8;
    public const int FileFormatVersionOffset = FeaturesOffset + 4;
    public const int DataOffsetOffset = FileFormatVersionOffset + 4;
    public const int TimeStampOffset = DataOffsetOffset + 8;
    public const int CreatorApplicationOffset = TimeStampOffset + 4;
    public const int CreatorVersionOffset = CreatorApplicationOffset + 4;
    public const int CreatorHostOsOffset = CreatorVersionOffset + 4;
    public const int OriginalSizeOffset = CreatorHostOsOffset + 4;
    public const int CurrentSizeOffset = OriginalSizeOffset + 8;
    public const int DiskGeometryOffset = CurrentSizeOffset + 8;
    public const int DiskTypeOffset = DiskGeometryOffset + 4;
    public const int ChecksumOffset = DiskTypeOffset + 4;
    public const int UniqueIdOffset = ChecksumOffset + 4;
    public const int SavedStateOffset = UniqueIdOffset + 16;
    public const int ReservedOffset = SavedStateOffset + 1;

    /// <summary>"Features": bit 1 is reserved and must always be set.</summary>
    public const uint FeaturesReserved = 2;

    public const uint Version1 = 0x00010000;

    /// <summary>Data offset of a fixed disk: there is no further structure.</summary>
    public const ulong NoDataOffset = ulong.MaxValue;

    /// <summary>Seconds between the Unix epoch and the VHD epoch (2000-01-01 00:00:00 UTC).</summary>
    public const long EpochUnixSeconds = 946684800;

    public static bool HasCookie(ReadOnlySpan<byte> data) =>
        data.Length >= SizeBytes && data[..8].SequenceEqual("conectix"u8);

    public string CreatorApplicationText => FourCc(CreatorApplication);

    public string CreatorHostOsText => FourCc(CreatorHostOs);

    public static uint FourCc(string text) => BinaryPrimitives.ReadUInt32BigEndian(Encoding.ASCII.GetBytes(text.PadRight(4, '\0')[..4]));

    public static string FourCc(uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return Encoding.ASCII.GetString(bytes);
    }

    public long CylinderHeadSectorCount => (long)Cylinders * Heads * SectorsPerTrack;

    /// <summary>Parses a footer; the checksum is returned in <see cref="Checksum"/> and checked by <see cref="ChecksumMatches"/>.</summary>
    public static VhdFooter Read(ReadOnlySpan<byte> data, string? fileName)
    {
        if (!HasCookie(data))
        {
            throw new ImageFormatException("not a VHD image: no 'conectix' footer", fileName);
        }

        uint diskType = BinaryPrimitives.ReadUInt32BigEndian(data[DiskTypeOffset..]);
        if (diskType is not ((uint)VhdDiskType.Fixed or (uint)VhdDiskType.Dynamic or (uint)VhdDiskType.Differencing))
        {
            throw new UnsupportedFeatureException($"unsupported VHD disk type {diskType}", fileName);
        }

        return new VhdFooter(
            BinaryPrimitives.ReadUInt32BigEndian(data[FeaturesOffset..]),
            BinaryPrimitives.ReadUInt32BigEndian(data[FileFormatVersionOffset..]),
            BinaryPrimitives.ReadUInt64BigEndian(data[DataOffsetOffset..]),
            BinaryPrimitives.ReadUInt32BigEndian(data[TimeStampOffset..]),
            BinaryPrimitives.ReadUInt32BigEndian(data[CreatorApplicationOffset..]),
            BinaryPrimitives.ReadUInt32BigEndian(data[CreatorVersionOffset..]),
            BinaryPrimitives.ReadUInt32BigEndian(data[CreatorHostOsOffset..]),
            BinaryPrimitives.ReadUInt64BigEndian(data[OriginalSizeOffset..]),
            BinaryPrimitives.ReadUInt64BigEndian(data[CurrentSizeOffset..]),
            BinaryPrimitives.ReadUInt16BigEndian(data[DiskGeometryOffset..]),
            data[DiskGeometryOffset + 2],
            data[DiskGeometryOffset + 3],
            (VhdDiskType)diskType,
            BinaryPrimitives.ReadUInt32BigEndian(data[ChecksumOffset..]),
            new Guid(data.Slice(UniqueIdOffset, 16), bigEndian: true),
            data[SavedStateOffset],
            data[ReservedOffset..SizeBytes].ToArray());
    }

    /// <summary>Serializes the footer with a freshly computed checksum.</summary>
    public void Write(Span<byte> data)
    {
        data[..SizeBytes].Clear();
        "conectix"u8.CopyTo(data);
        BinaryPrimitives.WriteUInt32BigEndian(data[FeaturesOffset..], Features);
        BinaryPrimitives.WriteUInt32BigEndian(data[FileFormatVersionOffset..], FileFormatVersion);
        BinaryPrimitives.WriteUInt64BigEndian(data[DataOffsetOffset..], DataOffset);
        BinaryPrimitives.WriteUInt32BigEndian(data[TimeStampOffset..], TimeStamp);
        BinaryPrimitives.WriteUInt32BigEndian(data[CreatorApplicationOffset..], CreatorApplication);
        BinaryPrimitives.WriteUInt32BigEndian(data[CreatorVersionOffset..], CreatorVersion);
        BinaryPrimitives.WriteUInt32BigEndian(data[CreatorHostOsOffset..], CreatorHostOs);
        BinaryPrimitives.WriteUInt64BigEndian(data[OriginalSizeOffset..], OriginalSize);
        BinaryPrimitives.WriteUInt64BigEndian(data[CurrentSizeOffset..], CurrentSize);
        BinaryPrimitives.WriteUInt16BigEndian(data[DiskGeometryOffset..], Cylinders);
        data[DiskGeometryOffset + 2] = Heads;
        data[DiskGeometryOffset + 3] = SectorsPerTrack;
        BinaryPrimitives.WriteUInt32BigEndian(data[DiskTypeOffset..], (uint)DiskType);
        UniqueId.TryWriteBytes(data.Slice(UniqueIdOffset, 16), bigEndian: true, out _);
        data[SavedStateOffset] = SavedState;
        if (Reserved is { Length: SizeBytes - ReservedOffset })
        {
            Reserved.CopyTo(data[ReservedOffset..]);
        }

        BinaryPrimitives.WriteUInt32BigEndian(data[ChecksumOffset..], ComputeChecksum(data[..SizeBytes], ChecksumOffset));
    }

    /// <summary>The spec's checksum: the one's complement of the byte sum of the structure with its checksum field taken as zero.</summary>
    public static uint ComputeChecksum(ReadOnlySpan<byte> structure, int checksumOffset)
    {
        uint sum = 0;
        for (int i = 0; i < structure.Length; i++)
        {
            if (i < checksumOffset || i >= checksumOffset + 4)
            {
                sum += structure[i];
            }
        }

        return ~sum;
    }

    public static bool ChecksumMatches(ReadOnlySpan<byte> data) =>
        BinaryPrimitives.ReadUInt32BigEndian(data[ChecksumOffset..]) == ComputeChecksum(data[..SizeBytes], ChecksumOffset);
}

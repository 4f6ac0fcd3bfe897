using System.Buffers.Binary;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Dmg;

/// <summary>
/// The UDIF trailer ("koly" block, 512 bytes, big-endian) at the end of a .dmg (libyal's libmodi "UDIF" notes, QEMU
/// block/dmg.c): where the data fork, the resource fork and the XML property list are, and the disk's sector count.
/// </summary>
internal readonly record struct DmgTrailer(uint Version, ulong DataForkOffset, ulong ResourceForkOffset, ulong ResourceForkLength, ulong PlistOffset, ulong PlistLength, ulong SectorCount)
{
    public const int SizeBytes = 512;
    public const uint Signature = 0x6b6f6c79; // "koly"

    private const int SignatureField = 0;
    private const int VersionField = SignatureField + sizeof(uint);
    private const int HeaderSizeField = VersionField + sizeof(uint);
    private const int FlagsField = HeaderSizeField + sizeof(uint);
    private const int RunningDataForkOffsetField = FlagsField + sizeof(uint);
    private const int DataForkOffsetField = RunningDataForkOffsetField + sizeof(ulong);
    private const int DataForkLengthField = DataForkOffsetField + sizeof(ulong);
    private const int ResourceForkOffsetField = DataForkLengthField + sizeof(ulong);
    private const int ResourceForkLengthField = ResourceForkOffsetField + sizeof(ulong);
    private const int SegmentNumberField = ResourceForkLengthField + sizeof(ulong);
    private const int SegmentCountField = SegmentNumberField + sizeof(uint);
    private const int SegmentIdField = SegmentCountField + sizeof(uint);
    private const int DataChecksumField = SegmentIdField + 16;
    private const int ChecksumBytes = 136;
    private const int PlistOffsetField = DataChecksumField + ChecksumBytes;
    private const int PlistLengthField = PlistOffsetField + sizeof(ulong);
    private const int ReservedField = PlistLengthField + sizeof(ulong);
    private const int MasterChecksumField = ReservedField + 120;
    private const int ImageVariantField = MasterChecksumField + ChecksumBytes;
    private const int SectorCountField = ImageVariantField + sizeof(uint);

    public static DmgTrailer Read(ReadOnlySpan<byte> bytes) => new(
        BinaryPrimitives.ReadUInt32BigEndian(bytes[VersionField..]),
        BinaryPrimitives.ReadUInt64BigEndian(bytes[DataForkOffsetField..]),
        BinaryPrimitives.ReadUInt64BigEndian(bytes[ResourceForkOffsetField..]),
        BinaryPrimitives.ReadUInt64BigEndian(bytes[ResourceForkLengthField..]),
        BinaryPrimitives.ReadUInt64BigEndian(bytes[PlistOffsetField..]),
        BinaryPrimitives.ReadUInt64BigEndian(bytes[PlistLengthField..]),
        BinaryPrimitives.ReadUInt64BigEndian(bytes[SectorCountField..]));

    /// <summary>Writes a trailer (tests build images with it).</summary>
    public void Write(Span<byte> destination)
    {
        destination[..SizeBytes].Clear();
        BinaryPrimitives.WriteUInt32BigEndian(destination[SignatureField..], Signature);
        BinaryPrimitives.WriteUInt32BigEndian(destination[VersionField..], Version);
        BinaryPrimitives.WriteUInt32BigEndian(destination[HeaderSizeField..], SizeBytes);
        BinaryPrimitives.WriteUInt64BigEndian(destination[DataForkOffsetField..], DataForkOffset);
        BinaryPrimitives.WriteUInt64BigEndian(destination[ResourceForkOffsetField..], ResourceForkOffset);
        BinaryPrimitives.WriteUInt64BigEndian(destination[ResourceForkLengthField..], ResourceForkLength);
        BinaryPrimitives.WriteUInt64BigEndian(destination[PlistOffsetField..], PlistOffset);
        BinaryPrimitives.WriteUInt64BigEndian(destination[PlistLengthField..], PlistLength);
        BinaryPrimitives.WriteUInt64BigEndian(destination[SectorCountField..], SectorCount);
    }

    /// <summary>
    /// Where "koly" starts. As QEMU: the file length may not be a multiple of 512, so the magic is looked for in the
    /// last 511 bytes of the second-last sector and the first 4 bytes of the last one.
    /// </summary>
    public static long FindOffset(ReadOnlySpan<byte> window, long windowOffset, string? fileName)
    {
        for (int i = 0; i + 4 <= window.Length; i++)
        {
            if (BinaryPrimitives.ReadUInt32BigEndian(window[i..]) == Signature)
            {
                return windowOffset + i;
            }
        }

        throw new ImageFormatException("could not locate the UDIF trailer (koly) in the dmg file", fileName);
    }
}

using System.Buffers.Binary;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Bochs;

/// <summary>
/// The 512-byte header of a Bochs growing image (bximage "growing" / redolog), little-endian: magic
/// "Bochs Virtual HD Image", type "Redolog", subtype "Growing" (NUL-terminated strings in 32/16/16 bytes), version
/// (1.0 or 2.0), header size (where the catalog starts), catalog entries, bitmap bytes and extent bytes, then the disk
/// size: at byte 84 in version 1, after a reserved word at byte 88 in version 2.
/// </summary>
internal readonly record struct BochsHeader(uint Version, uint HeaderBytes, uint CatalogEntries, uint BitmapBytes, uint ExtentBytes, ulong DiskBytes)
{
    public const int SizeBytes = 512;
    public const uint Version1 = 0x00010000;
    public const uint Version2 = 0x00020000;

    private const int MagicField = 0;
    private const int MagicBytes = 32;
    private const int TypeField = MagicField + MagicBytes;
    private const int TypeBytes = 16;
    private const int SubtypeField = TypeField + TypeBytes;
    private const int SubtypeBytes = 16;
    private const int VersionField = SubtypeField + SubtypeBytes;
    private const int HeaderField = VersionField + sizeof(uint);
    private const int CatalogField = HeaderField + sizeof(uint);
    private const int BitmapField = CatalogField + sizeof(uint);
    private const int ExtentField = BitmapField + sizeof(uint);
    private const int DiskV1Field = ExtentField + sizeof(uint);
    private const int ReservedV2Field = DiskV1Field;
    private const int DiskV2Field = ReservedV2Field + sizeof(uint);

    public static ReadOnlySpan<byte> Magic => "Bochs Virtual HD Image"u8;

    public static ReadOnlySpan<byte> RedologType => "Redolog"u8;

    public static ReadOnlySpan<byte> GrowingSubtype => "Growing"u8;

    /// <summary>QEMU's bochs_probe: the three strings and a known version.</summary>
    public static bool Matches(ReadOnlySpan<byte> head)
    {
        if (head.Length < SizeBytes)
        {
            return false;
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(head[VersionField..]);
        return IsString(head.Slice(MagicField, MagicBytes), Magic)
            && IsString(head.Slice(TypeField, TypeBytes), RedologType)
            && IsString(head.Slice(SubtypeField, SubtypeBytes), GrowingSubtype)
            && version is Version1 or Version2;
    }

    public static BochsHeader Read(ReadOnlySpan<byte> bytes, string? fileName)
    {
        if (!Matches(bytes))
        {
            throw new ImageFormatException("image not in Bochs format (a growing redolog image)", fileName);
        }

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(bytes[VersionField..]);
        return new BochsHeader(
            version,
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[HeaderField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[CatalogField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[BitmapField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[ExtentField..]),
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[(version == Version1 ? DiskV1Field : DiskV2Field)..]));
    }

    /// <summary>Writes the header (tests build images with it).</summary>
    public void Write(Span<byte> destination)
    {
        destination[..SizeBytes].Clear();
        Magic.CopyTo(destination[MagicField..]);
        RedologType.CopyTo(destination[TypeField..]);
        GrowingSubtype.CopyTo(destination[SubtypeField..]);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[VersionField..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[HeaderField..], HeaderBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[CatalogField..], CatalogEntries);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[BitmapField..], BitmapBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[ExtentField..], ExtentBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[(Version == Version1 ? DiskV1Field : DiskV2Field)..], DiskBytes);
    }

    /// <summary>A NUL-terminated string field equal to <paramref name="expected"/> (C's strcmp on the field).</summary>
    private static bool IsString(ReadOnlySpan<byte> field, ReadOnlySpan<byte> expected) =>
        field.Length > expected.Length && field.StartsWith(expected) && field[expected.Length] == 0;
}

using System.Buffers.Binary;
using System.Text;

namespace ImgTool.Formats.Vdi;

/// <summary>
/// The first sector of a VDI file: the pre-header (text, signature, version) and the version 1.1 header that follows it
/// (VirtualBox's VDIPREHEADER + VDIHEADER1, QEMU's VdiHeader). All integers are little-endian; the four UUIDs are stored
/// as IPRT writes them, which is the byte layout of .NET's <see cref="Guid"/> (the first three fields little-endian).
/// Fields imgtool does not interpret (the comment, the legacy and LCHS geometries, reserved bytes) are kept in
/// <see cref="Sector"/> and written back unchanged.
/// </summary>
internal readonly record struct VdiHeader(
    uint Signature,
    uint Version,
    uint HeaderBytes,
    VdiImageType ImageType,
    uint ImageFlags,
    uint BlockMapOffsetBytes,
    uint DataOffsetBytes,
    uint SectorBytes,
    ulong DiskSizeBytes,
    uint BlockBytes,
    uint BlockExtraBytes,
    uint BlockCount,
    uint BlocksAllocated,
    Guid UuidCreate,
    Guid UuidModify,
    Guid UuidLinkage,
    Guid UuidParentModify,
    byte[] Sector)
{
    /// <summary>The header occupies the file's first sector; QEMU reads and rewrites exactly that much.</summary>
    public const int SizeBytes = 512;

    public const uint ExpectedSignature = 0xbeda107f;

    /// <summary>Version 1.1 (major in the high half): what QEMU and every VirtualBox since 1.x write.</summary>
    public const uint Version1_1 = 0x00010001;

    /// <summary>The v1.1 header without the LCHS geometry (sizeof(VDIHEADER1)), as QEMU writes it.</summary>
    public const uint Header1Bytes = 0x180;

    /// <summary>The v1.1 header with the LCHS geometry (sizeof(VDIHEADER1PLUS)), as VirtualBox writes it.</summary>
    public const uint Header1PlusBytes = 0x190;

    /// <summary>Free text "for eyes only"; QEMU writes its own, VirtualBox "&lt;&lt;&lt; Oracle VM VirtualBox Disk Image &gt;&gt;&gt;\n".</summary>
    public const string QemuText = "<<< QEMU VM Virtual Disk Image >>>\n";

    public const int TextOffset = 0;
    public const int TextBytes = 64;
    public const int SignatureOffset = TextOffset + TextBytes;
    public const int VersionOffset = SignatureOffset + 4;

    /// <summary>Where VDIHEADER1 starts: right after the 72-byte pre-header.</summary>
    public const int PreHeaderBytes = VersionOffset + 4;
    public const int HeaderBytesOffset = PreHeaderBytes;
    public const int ImageTypeOffset = HeaderBytesOffset + 4;
    public const int ImageFlagsOffset = ImageTypeOffset + 4;
    public const int CommentOffset = ImageFlagsOffset + 4;
    public const int CommentBytes = 256;
    public const int BlockMapOffsetOffset = CommentOffset + CommentBytes;
    public const int DataOffsetOffset = BlockMapOffsetOffset + 4;

    /// <summary>Legacy geometry: cylinders, heads, sectors, sector size (VDIDISKGEOMETRY).</summary>
    public const int LegacyGeometryOffset = DataOffsetOffset + 4;
    public const int SectorBytesOffset = LegacyGeometryOffset + 12;

    /// <summary>Was the BIOS translation mode; unused.</summary>
    public const int DummyOffset = SectorBytesOffset + 4;
    public const int DiskSizeOffset = DummyOffset + 4;
    public const int BlockBytesOffset = DiskSizeOffset + 8;
    public const int BlockExtraBytesOffset = BlockBytesOffset + 4;
    public const int BlockCountOffset = BlockExtraBytesOffset + 4;
    public const int BlocksAllocatedOffset = BlockCountOffset + 4;
    public const int UuidCreateOffset = BlocksAllocatedOffset + 4;
    public const int UuidModifyOffset = UuidCreateOffset + 16;

    /// <summary>Differencing images: the parent's <see cref="UuidCreate"/> (QEMU calls it uuid_link).</summary>
    public const int UuidLinkageOffset = UuidModifyOffset + 16;

    /// <summary>Differencing images: the parent's <see cref="UuidModify"/> when the child was made (QEMU's uuid_parent).</summary>
    public const int UuidParentModifyOffset = UuidLinkageOffset + 16;

    /// <summary>End of VDIHEADER1: <see cref="PreHeaderBytes"/> + <see cref="Header1Bytes"/>.</summary>
    public const int Header1End = UuidParentModifyOffset + 16;

    public bool IsDifferencing => ImageType == VdiImageType.Differencing;

    public bool IsStatic => ImageType == VdiImageType.Static;

    /// <summary>Bytes one block takes in the file: its extra data (VirtualBox's cbBlockExtra, 0 in practice) and its data.</summary>
    public long BlockSpanBytes => (long)BlockExtraBytes + BlockBytes;

    /// <summary>Bytes of block map the header describes.</summary>
    public long BlockMapBytes => (long)BlockCount * 4;

    public static bool HasSignature(ReadOnlySpan<byte> data) =>
        data.Length >= PreHeaderBytes && BinaryPrimitives.ReadUInt32LittleEndian(data[SignatureOffset..]) == ExpectedSignature;

    /// <summary>Parses the first sector; no field is validated here (<see cref="VdiHeaderCheck"/> does that).</summary>
    public static VdiHeader Read(ReadOnlySpan<byte> sector)
    {
        if (sector.Length < SizeBytes)
        {
            throw new ArgumentException($"a VDI header is read from {SizeBytes} bytes", nameof(sector));
        }

        return new VdiHeader(
            U32(sector, SignatureOffset),
            U32(sector, VersionOffset),
            U32(sector, HeaderBytesOffset),
            (VdiImageType)U32(sector, ImageTypeOffset),
            U32(sector, ImageFlagsOffset),
            U32(sector, BlockMapOffsetOffset),
            U32(sector, DataOffsetOffset),
            U32(sector, SectorBytesOffset),
            BinaryPrimitives.ReadUInt64LittleEndian(sector[DiskSizeOffset..]),
            U32(sector, BlockBytesOffset),
            U32(sector, BlockExtraBytesOffset),
            U32(sector, BlockCountOffset),
            U32(sector, BlocksAllocatedOffset),
            new Guid(sector.Slice(UuidCreateOffset, 16)),
            new Guid(sector.Slice(UuidModifyOffset, 16)),
            new Guid(sector.Slice(UuidLinkageOffset, 16)),
            new Guid(sector.Slice(UuidParentModifyOffset, 16)),
            sector[..SizeBytes].ToArray());
    }

    /// <summary>A new header as QEMU lays it out: block map at 512, data right after the map, 1 MiB blocks.</summary>
    public static VdiHeader CreateNew(VdiImageType type, ulong diskSizeBytes, uint blockCount, uint blocksAllocated, Guid uuidCreate, Guid uuidModify, Guid uuidLinkage, Guid uuidParentModify)
    {
        byte[] sector = new byte[SizeBytes];
        Encoding.ASCII.GetBytes(QemuText).CopyTo(sector, TextOffset);
        long mapBytes = RoundUpToSector((long)blockCount * 4);
        return new VdiHeader(
            ExpectedSignature,
            Version1_1,
            Header1Bytes,
            type,
            0,
            SizeBytes,
            (uint)(SizeBytes + mapBytes),
            VdiLimits.SectorBytes,
            diskSizeBytes,
            VdiLimits.DefaultBlockBytes,
            0,
            blockCount,
            blocksAllocated,
            uuidCreate,
            uuidModify,
            uuidLinkage,
            uuidParentModify,
            sector);
    }

    public static long RoundUpToSector(long value) => (value + VdiLimits.SectorBytes - 1) / VdiLimits.SectorBytes * VdiLimits.SectorBytes;

    /// <summary>Writes the whole first sector: the kept bytes with every known field over them.</summary>
    public void Write(Span<byte> sector)
    {
        Sector.CopyTo(sector);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[SignatureOffset..], Signature);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[VersionOffset..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[HeaderBytesOffset..], HeaderBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[ImageTypeOffset..], (uint)ImageType);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[ImageFlagsOffset..], ImageFlags);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[BlockMapOffsetOffset..], BlockMapOffsetBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[DataOffsetOffset..], DataOffsetBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[SectorBytesOffset..], SectorBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(sector[DiskSizeOffset..], DiskSizeBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[BlockBytesOffset..], BlockBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[BlockExtraBytesOffset..], BlockExtraBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[BlockCountOffset..], BlockCount);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[BlocksAllocatedOffset..], BlocksAllocated);
        UuidCreate.TryWriteBytes(sector.Slice(UuidCreateOffset, 16));
        UuidModify.TryWriteBytes(sector.Slice(UuidModifyOffset, 16));
        UuidLinkage.TryWriteBytes(sector.Slice(UuidLinkageOffset, 16));
        UuidParentModify.TryWriteBytes(sector.Slice(UuidParentModifyOffset, 16));
    }

    public byte[] ToBytes()
    {
        byte[] bytes = new byte[SizeBytes];
        Write(bytes);
        return bytes;
    }

    private static uint U32(ReadOnlySpan<byte> data, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(data[offset..]);
}

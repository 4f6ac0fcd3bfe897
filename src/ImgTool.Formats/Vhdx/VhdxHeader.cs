using System.Buffers.Binary;

namespace ImgTool.Formats.Vhdx;

/// <summary>The fixed layout of the first megabyte (VHDX spec 2.1): file identifier, two headers, two region tables.</summary>
internal static class VhdxLayout
{
    public const int HeaderBlockBytes = 64 * 1024;
    public const long FileIdentifierOffset = 0;
    public const long Header1Offset = HeaderBlockBytes;
    public const long Header2Offset = 2 * HeaderBlockBytes;
    public const long RegionTable1Offset = 3 * HeaderBlockBytes;
    public const long RegionTable2Offset = 4 * HeaderBlockBytes;

    /// <summary>The header section ends at 1 MiB; every other object is 1 MiB aligned.</summary>
    public const long HeaderSectionEnd = VhdxLimits.MiB;

    /// <summary>"vhdxfile" (spec 2.2.1).</summary>
    public const ulong FileSignature = 0x656C696678646876;

    public const int CreatorOffset = 8;
    public const int CreatorBytes = 512;
}

/// <summary>
/// The VHDX header (spec 2.2.2): 4 KiB covered by a CRC-32C; the valid header with the higher
/// sequence number is current. Bytes past the defined fields are reserved and kept.
/// </summary>
internal readonly record struct VhdxHeader(
    ulong SequenceNumber,
    Guid FileWriteGuid,
    Guid DataWriteGuid,
    Guid LogGuid,
    ushort LogVersion,
    ushort Version,
    uint LogLengthBytes,
    ulong LogOffsetBytes)
{
    public const int SizeBytes = 4096;
    public const uint Signature = 0x64616568; // "head"

    public const int SignatureOffset = 0;
    public const int ChecksumOffset = SignatureOffset + 4;
    public const int SequenceNumberOffset = ChecksumOffset + 4;
    public const int FileWriteGuidOffset = SequenceNumberOffset + 8;
    public const int DataWriteGuidOffset = FileWriteGuidOffset + 16;
    public const int LogGuidOffset = DataWriteGuidOffset + 16;
    public const int LogVersionOffset = LogGuidOffset + 16;
    public const int VersionOffset = LogVersionOffset + 2;
    public const int LogLengthOffset = VersionOffset + 2;
    public const int LogOffsetOffset = LogLengthOffset + 4;
    public const int DefinedBytes = LogOffsetOffset + 8;

    /// <summary>Parses a header, or returns null when its signature or checksum is wrong.</summary>
    public static VhdxHeader? TryRead(ReadOnlySpan<byte> block)
    {
        if (block.Length < SizeBytes
            || BinaryPrimitives.ReadUInt32LittleEndian(block[SignatureOffset..]) != Signature
            || !Crc32C.Verify(block[..SizeBytes], ChecksumOffset))
        {
            return null;
        }

        return new VhdxHeader(
            BinaryPrimitives.ReadUInt64LittleEndian(block[SequenceNumberOffset..]),
            new Guid(block.Slice(FileWriteGuidOffset, 16)),
            new Guid(block.Slice(DataWriteGuidOffset, 16)),
            new Guid(block.Slice(LogGuidOffset, 16)),
            BinaryPrimitives.ReadUInt16LittleEndian(block[LogVersionOffset..]),
            BinaryPrimitives.ReadUInt16LittleEndian(block[VersionOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(block[LogLengthOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(block[LogOffsetOffset..]));
    }

    /// <summary>Writes the 4 KiB header with its checksum; reserved bytes are zero.</summary>
    public void Write(Span<byte> block)
    {
        block[..SizeBytes].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(block[SignatureOffset..], Signature);
        BinaryPrimitives.WriteUInt64LittleEndian(block[SequenceNumberOffset..], SequenceNumber);
        FileWriteGuid.TryWriteBytes(block.Slice(FileWriteGuidOffset, 16));
        DataWriteGuid.TryWriteBytes(block.Slice(DataWriteGuidOffset, 16));
        LogGuid.TryWriteBytes(block.Slice(LogGuidOffset, 16));
        BinaryPrimitives.WriteUInt16LittleEndian(block[LogVersionOffset..], LogVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(block[VersionOffset..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(block[LogLengthOffset..], LogLengthBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(block[LogOffsetOffset..], LogOffsetBytes);
        Crc32C.Stamp(block[..SizeBytes], ChecksumOffset);
    }
}

/// <summary>One region table entry (spec 2.2.3.2): an object of the file by GUID, offset and length.</summary>
internal readonly record struct VhdxRegion(Guid Id, ulong FileOffsetBytes, uint LengthBytes, bool Required)
{
    public const int SizeBytes = 32;
    public const int GuidOffset = 0;
    public const int FileOffsetOffset = GuidOffset + 16;
    public const int LengthOffset = FileOffsetOffset + 8;
    public const int DataBitsOffset = LengthOffset + 4;
    public const uint RequiredBit = 1;
}

/// <summary>The region table (spec 2.2.3): a 64 KiB block with a CRC-32C, kept twice.</summary>
internal static class VhdxRegionTable
{
    public const uint Signature = 0x69676572; // "regi"
    public const int SizeBytes = VhdxLayout.HeaderBlockBytes;
    public const int SignatureOffset = 0;
    public const int ChecksumOffset = SignatureOffset + 4;
    public const int EntryCountOffset = ChecksumOffset + 4;
    public const int EntriesOffset = 16;

    /// <summary>Spec 3.1.1: the BAT region.</summary>
    public static readonly Guid BatRegion = new("2DC27766-F623-4200-9D64-115E9BFD4A08");

    /// <summary>Spec 3.1.1: the metadata region.</summary>
    public static readonly Guid MetadataRegion = new("8B7CA206-4790-4B9A-B8FE-575F050F886E");

    /// <summary>Parses the table, or returns null when the signature, checksum or count is wrong.</summary>
    public static List<VhdxRegion>? TryRead(ReadOnlySpan<byte> table)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(table[SignatureOffset..]) != Signature
            || !Crc32C.Verify(table[..SizeBytes], ChecksumOffset))
        {
            return null;
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(table[EntryCountOffset..]);
        if (count > VhdxLimits.MaxRegionEntries)
        {
            return null;
        }

        var regions = new List<VhdxRegion>((int)count);
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> e = table.Slice(EntriesOffset + (i * VhdxRegion.SizeBytes), VhdxRegion.SizeBytes);
            regions.Add(new VhdxRegion(
                new Guid(e.Slice(VhdxRegion.GuidOffset, 16)),
                BinaryPrimitives.ReadUInt64LittleEndian(e[VhdxRegion.FileOffsetOffset..]),
                BinaryPrimitives.ReadUInt32LittleEndian(e[VhdxRegion.LengthOffset..]),
                (BinaryPrimitives.ReadUInt32LittleEndian(e[VhdxRegion.DataBitsOffset..]) & VhdxRegion.RequiredBit) != 0));
        }

        return regions;
    }

    public static void Write(Span<byte> table, IReadOnlyList<VhdxRegion> regions)
    {
        table[..SizeBytes].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(table[SignatureOffset..], Signature);
        BinaryPrimitives.WriteUInt32LittleEndian(table[EntryCountOffset..], (uint)regions.Count);
        for (int i = 0; i < regions.Count; i++)
        {
            Span<byte> e = table.Slice(EntriesOffset + (i * VhdxRegion.SizeBytes), VhdxRegion.SizeBytes);
            regions[i].Id.TryWriteBytes(e.Slice(VhdxRegion.GuidOffset, 16));
            BinaryPrimitives.WriteUInt64LittleEndian(e[VhdxRegion.FileOffsetOffset..], regions[i].FileOffsetBytes);
            BinaryPrimitives.WriteUInt32LittleEndian(e[VhdxRegion.LengthOffset..], regions[i].LengthBytes);
            BinaryPrimitives.WriteUInt32LittleEndian(e[VhdxRegion.DataBitsOffset..], regions[i].Required ? VhdxRegion.RequiredBit : 0);
        }

        Crc32C.Stamp(table[..SizeBytes], ChecksumOffset);
    }
}

using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vhd;

/// <summary>One parent locator entry of the dynamic disk header (spec: "Parent Locator Entries", 24 bytes each).</summary>
/// <param name="PlatformCode">Which kind of path the data holds: W2ru (relative, UTF-16LE), W2ku (absolute, UTF-16LE), ...</param>
/// <param name="DataSpace">Space reserved for the data. The spec says sectors; Hyper-V writes bytes, so readers use <paramref name="DataLength"/>.</param>
internal readonly record struct VhdParentLocator(uint PlatformCode, uint DataSpace, uint DataLength, uint Reserved, ulong DataOffset)
{
    public const int SizeBytes = 24;

    /// <summary>"W2ru": a Windows path relative to the child, UTF-16LE.</summary>
    public static readonly uint W2ru = VhdFooter.FourCc("W2ru");

    /// <summary>"W2ku": an absolute Windows path, UTF-16LE.</summary>
    public static readonly uint W2ku = VhdFooter.FourCc("W2ku");

    public bool IsEmpty => PlatformCode == 0;
}

/// <summary>
/// The 1024-byte dynamic disk header ("Dynamic Disk Header Format" of the VHD specification), which follows the footer copy
/// in dynamic and differencing disks and locates the block allocation table and the parent.
/// </summary>
internal readonly record struct VhdDynamicHeader(
    ulong DataOffset,
    ulong TableOffset,
    uint HeaderVersion,
    uint MaxTableEntries,
    uint BlockSize,
    uint Checksum,
    Guid ParentUniqueId,
    uint ParentTimeStamp,
    string ParentUnicodeName,
    VhdParentLocator[] ParentLocators)
{
    public const int SizeBytes = 1024;
    public const int LocatorCount = 8;

    public const int Cookie = 0;
    public const int DataOffsetOffset = Cookie + 8;
    public const int TableOffsetOffset = DataOffsetOffset + 8;
    public const int HeaderVersionOffset = TableOffsetOffset + 8;
    public const int MaxTableEntriesOffset = HeaderVersionOffset + 4;
    public const int BlockSizeOffset = MaxTableEntriesOffset + 4;
    public const int ChecksumOffset = BlockSizeOffset + 4;
    public const int ParentUniqueIdOffset = ChecksumOffset + 4;
    public const int ParentTimeStampOffset = ParentUniqueIdOffset + 16;
    public const int Reserved1Offset = ParentTimeStampOffset + 4;
    public const int ParentUnicodeNameOffset = Reserved1Offset + 4;
    public const int ParentUnicodeNameBytes = 512;
    public const int ParentLocatorsOffset = ParentUnicodeNameOffset + ParentUnicodeNameBytes;
    public const int Reserved2Offset = ParentLocatorsOffset + (LocatorCount * VhdParentLocator.SizeBytes);

    public static bool HasCookie(ReadOnlySpan<byte> data) => data.Length >= SizeBytes && data[..8].SequenceEqual("cxsparse"u8);

    public static VhdDynamicHeader Read(ReadOnlySpan<byte> data, string? fileName)
    {
        if (!HasCookie(data))
        {
            throw new ImageCorruptException("the dynamic disk header has no 'cxsparse' cookie", "dynamic disk header", 0, fileName);
        }

        var locators = new VhdParentLocator[LocatorCount];
        for (int i = 0; i < LocatorCount; i++)
        {
            ReadOnlySpan<byte> entry = data.Slice(ParentLocatorsOffset + (i * VhdParentLocator.SizeBytes), VhdParentLocator.SizeBytes);
            locators[i] = new VhdParentLocator(
                BinaryPrimitives.ReadUInt32BigEndian(entry),
                BinaryPrimitives.ReadUInt32BigEndian(entry[4..]),
                BinaryPrimitives.ReadUInt32BigEndian(entry[8..]),
                BinaryPrimitives.ReadUInt32BigEndian(entry[12..]),
                BinaryPrimitives.ReadUInt64BigEndian(entry[16..]));
        }

        // The parent name is UTF-16 big-endian, NUL-padded (spec: "Parent Unicode Name").
        string name = Encoding.BigEndianUnicode.GetString(data.Slice(ParentUnicodeNameOffset, ParentUnicodeNameBytes));
        int nul = name.IndexOf('\0', StringComparison.Ordinal);
        return new VhdDynamicHeader(
            BinaryPrimitives.ReadUInt64BigEndian(data[DataOffsetOffset..]),
            BinaryPrimitives.ReadUInt64BigEndian(data[TableOffsetOffset..]),
            BinaryPrimitives.ReadUInt32BigEndian(data[HeaderVersionOffset..]),
            BinaryPrimitives.ReadUInt32BigEndian(data[MaxTableEntriesOffset..]),
            BinaryPrimitives.ReadUInt32BigEndian(data[BlockSizeOffset..]),
            BinaryPrimitives.ReadUInt32BigEndian(data[ChecksumOffset..]),
            new Guid(data.Slice(ParentUniqueIdOffset, 16), bigEndian: true),
            BinaryPrimitives.ReadUInt32BigEndian(data[ParentTimeStampOffset..]),
            nul < 0 ? name : name[..nul],
            locators);
    }

    public void Write(Span<byte> data)
    {
        data[..SizeBytes].Clear();
        "cxsparse"u8.CopyTo(data);
        BinaryPrimitives.WriteUInt64BigEndian(data[DataOffsetOffset..], DataOffset);
        BinaryPrimitives.WriteUInt64BigEndian(data[TableOffsetOffset..], TableOffset);
        BinaryPrimitives.WriteUInt32BigEndian(data[HeaderVersionOffset..], HeaderVersion);
        BinaryPrimitives.WriteUInt32BigEndian(data[MaxTableEntriesOffset..], MaxTableEntries);
        BinaryPrimitives.WriteUInt32BigEndian(data[BlockSizeOffset..], BlockSize);
        ParentUniqueId.TryWriteBytes(data.Slice(ParentUniqueIdOffset, 16), bigEndian: true, out _);
        BinaryPrimitives.WriteUInt32BigEndian(data[ParentTimeStampOffset..], ParentTimeStamp);
        Span<byte> name = data.Slice(ParentUnicodeNameOffset, ParentUnicodeNameBytes);
        int maxChars = ParentUnicodeNameBytes / 2;
        string parentName = ParentUnicodeName.Length > maxChars ? ParentUnicodeName[..maxChars] : ParentUnicodeName;
        Encoding.BigEndianUnicode.GetBytes(parentName, name);
        for (int i = 0; i < LocatorCount && i < ParentLocators.Length; i++)
        {
            Span<byte> entry = data.Slice(ParentLocatorsOffset + (i * VhdParentLocator.SizeBytes), VhdParentLocator.SizeBytes);
            VhdParentLocator locator = ParentLocators[i];
            BinaryPrimitives.WriteUInt32BigEndian(entry, locator.PlatformCode);
            BinaryPrimitives.WriteUInt32BigEndian(entry[4..], locator.DataSpace);
            BinaryPrimitives.WriteUInt32BigEndian(entry[8..], locator.DataLength);
            BinaryPrimitives.WriteUInt32BigEndian(entry[12..], locator.Reserved);
            BinaryPrimitives.WriteUInt64BigEndian(entry[16..], locator.DataOffset);
        }

        BinaryPrimitives.WriteUInt32BigEndian(data[ChecksumOffset..], VhdFooter.ComputeChecksum(data[..SizeBytes], ChecksumOffset));
    }

    public static bool ChecksumMatches(ReadOnlySpan<byte> data) =>
        BinaryPrimitives.ReadUInt32BigEndian(data[ChecksumOffset..]) == VhdFooter.ComputeChecksum(data[..SizeBytes], ChecksumOffset);
}

using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vhdx;

/// <summary>The parent locator (spec 3.5.2.6): a locator type and UTF-16 key/value pairs.</summary>
internal sealed record VhdxParentLocator(Guid LocatorType, IReadOnlyList<KeyValuePair<string, string>> Entries)
{
    /// <summary>Spec 3.5.2.6.1: the locator type for a VHDX parent.</summary>
    public static readonly Guid VhdxParentType = new("B04AEFB7-D19E-4A81-B789-25B8E9445913");

    public const int HeaderBytes = 20;
    public const int EntryBytes = 12;

    public string? this[string key] => Entries.FirstOrDefault(e => e.Key == key).Value;

    public static VhdxParentLocator Read(ReadOnlySpan<byte> item, string path)
    {
        if (item.Length < HeaderBytes)
        {
            throw Corrupt("the parent locator is shorter than its header", path);
        }

        var type = new Guid(item[..16]);
        int count = BinaryPrimitives.ReadUInt16LittleEndian(item[18..]);
        if (count > VhdxLimits.MaxParentLocatorEntries || HeaderBytes + (count * EntryBytes) > item.Length)
        {
            throw Corrupt($"the parent locator has {count} entries, more than it holds", path);
        }

        var entries = new List<KeyValuePair<string, string>>(count);
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> e = item.Slice(HeaderBytes + (i * EntryBytes), EntryBytes);
            string key = ReadString(item, BinaryPrimitives.ReadUInt32LittleEndian(e), BinaryPrimitives.ReadUInt16LittleEndian(e[8..]), path);
            string value = ReadString(item, BinaryPrimitives.ReadUInt32LittleEndian(e[4..]), BinaryPrimitives.ReadUInt16LittleEndian(e[10..]), path);
            entries.Add(new(key, value));
        }

        return new VhdxParentLocator(type, entries);
    }

    public byte[] Serialize()
    {
        var strings = new List<byte[]>();
        int offset = HeaderBytes + (Entries.Count * EntryBytes);
        byte[] item = new byte[offset + Entries.Sum(e => Encoding.Unicode.GetByteCount(e.Key) + Encoding.Unicode.GetByteCount(e.Value))];
        LocatorType.TryWriteBytes(item.AsSpan(0, 16));
        BinaryPrimitives.WriteUInt16LittleEndian(item.AsSpan(18), (ushort)Entries.Count);
        for (int i = 0; i < Entries.Count; i++)
        {
            Span<byte> e = item.AsSpan(HeaderBytes + (i * EntryBytes), EntryBytes);
            int keyLength = Encoding.Unicode.GetBytes(Entries[i].Key, item.AsSpan(offset));
            BinaryPrimitives.WriteUInt32LittleEndian(e, (uint)offset);
            BinaryPrimitives.WriteUInt16LittleEndian(e[8..], (ushort)keyLength);
            offset += keyLength;
            int valueLength = Encoding.Unicode.GetBytes(Entries[i].Value, item.AsSpan(offset));
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], (uint)offset);
            BinaryPrimitives.WriteUInt16LittleEndian(e[10..], (ushort)valueLength);
            offset += valueLength;
        }

        return item;
    }

    private static string ReadString(ReadOnlySpan<byte> item, uint offset, int length, string path)
    {
        if (offset == 0 || length == 0 || length % 2 != 0 || offset > (uint)item.Length || length > item.Length - offset)
        {
            throw Corrupt($"a parent locator string at {offset} (length {length}) lies outside the locator", path);
        }

        return Encoding.Unicode.GetString(item.Slice((int)offset, length));
    }

    private static ImageCorruptException Corrupt(string message, string path) => new(message, "parent locator", 0, path);
}

/// <summary>One metadata table entry (spec 3.5.1.2).</summary>
internal readonly record struct VhdxMetadataEntry(Guid ItemId, uint OffsetBytes, uint LengthBytes, bool IsUser, bool IsVirtualDisk, bool IsRequired)
{
    public const int SizeBytes = 32;
    public const int ItemIdOffset = 0;
    public const int OffsetOffset = ItemIdOffset + 16;
    public const int LengthOffset = OffsetOffset + 4;
    public const int FlagsOffset = LengthOffset + 4;
    public const uint IsUserBit = 1;
    public const uint IsVirtualDiskBit = 2;
    public const uint IsRequiredBit = 4;
}

/// <summary>The metadata table (spec 3.5.1) and the known items (spec 3.5.2).</summary>
internal static class VhdxMetadataTable
{
    public const ulong Signature = 0x617461646174656D; // "metadata"
    public const int TableBytes = 64 * 1024;
    public const int EntryCountOffset = 10;
    public const int EntriesOffset = 32;

    /// <summary>Items start after the 64 KiB table (spec 3.5.1.2: offset at least 64 KiB).</summary>
    public const int FirstItemOffset = TableBytes;

    public static readonly Guid FileParameters = new("CAA16737-FA36-4D43-B3B6-33F0AA44E76B");
    public static readonly Guid VirtualDiskSize = new("2FA54224-CD1B-4876-B211-5DBED83BF4B8");
    public static readonly Guid Page83Data = new("BECA12AB-B2E6-4523-93EF-C309E000C746");
    public static readonly Guid LogicalSectorSize = new("8141BF1D-A96F-4709-BA47-F233A8FAAB5F");
    public static readonly Guid PhysicalSectorSize = new("CDA348C7-445D-4471-9CC9-E9885251C556");
    public static readonly Guid ParentLocator = new("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C");

    /// <summary>File parameters flags (spec 3.5.2.1).</summary>
    public const uint LeaveBlocksAllocatedBit = 1;
    public const uint HasParentBit = 2;

    public static bool IsKnown(Guid id) =>
        id == FileParameters || id == VirtualDiskSize || id == Page83Data || id == LogicalSectorSize
        || id == PhysicalSectorSize || id == ParentLocator;

    public static List<VhdxMetadataEntry> ReadEntries(ReadOnlySpan<byte> table, uint regionLengthBytes, string path)
    {
        if (BinaryPrimitives.ReadUInt64LittleEndian(table) != Signature)
        {
            throw new ImageCorruptException("the metadata table has a bad signature", "metadata table", 0, path);
        }

        int count = BinaryPrimitives.ReadUInt16LittleEndian(table[EntryCountOffset..]);
        if (count > VhdxLimits.MaxMetadataEntries)
        {
            throw new ImageCorruptException($"the metadata table has {count} entries (at most {VhdxLimits.MaxMetadataEntries})", "metadata table", 0, path);
        }

        var entries = new List<VhdxMetadataEntry>(count);
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> e = table.Slice(EntriesOffset + (i * VhdxMetadataEntry.SizeBytes), VhdxMetadataEntry.SizeBytes);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(e[VhdxMetadataEntry.FlagsOffset..]);
            var entry = new VhdxMetadataEntry(
                new Guid(e[..16]),
                BinaryPrimitives.ReadUInt32LittleEndian(e[VhdxMetadataEntry.OffsetOffset..]),
                BinaryPrimitives.ReadUInt32LittleEndian(e[VhdxMetadataEntry.LengthOffset..]),
                (flags & VhdxMetadataEntry.IsUserBit) != 0,
                (flags & VhdxMetadataEntry.IsVirtualDiskBit) != 0,
                (flags & VhdxMetadataEntry.IsRequiredBit) != 0);
            if (entry.LengthBytes > VhdxLimits.MaxMetadataItemBytes
                || (entry.LengthBytes > 0 && (entry.OffsetBytes < FirstItemOffset || (ulong)entry.OffsetBytes + entry.LengthBytes > regionLengthBytes)))
            {
                throw new ImageCorruptException(
                    $"metadata item {entry.ItemId} at {entry.OffsetBytes} (length {entry.LengthBytes}) lies outside the metadata region",
                    "metadata table", 0, path);
            }

            entries.Add(entry);
        }

        return entries;
    }

    /// <summary>Writes the table and the items it lists, items packed from 64 KiB on as QEMU lays them out.</summary>
    public static byte[] Build(IReadOnlyList<(Guid Id, byte[] Data, uint Flags)> items)
    {
        int itemsBytes = items.Sum(i => i.Data.Length);
        byte[] region = new byte[TableBytes + itemsBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(region, Signature);
        BinaryPrimitives.WriteUInt16LittleEndian(region.AsSpan(EntryCountOffset), (ushort)items.Count);
        uint offset = FirstItemOffset;
        for (int i = 0; i < items.Count; i++)
        {
            Span<byte> e = region.AsSpan(EntriesOffset + (i * VhdxMetadataEntry.SizeBytes), VhdxMetadataEntry.SizeBytes);
            items[i].Id.TryWriteBytes(e[..16]);
            BinaryPrimitives.WriteUInt32LittleEndian(e[VhdxMetadataEntry.OffsetOffset..], offset);
            BinaryPrimitives.WriteUInt32LittleEndian(e[VhdxMetadataEntry.LengthOffset..], (uint)items[i].Data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(e[VhdxMetadataEntry.FlagsOffset..], items[i].Flags);
            items[i].Data.CopyTo(region.AsSpan((int)offset));
            offset += (uint)items[i].Data.Length;
        }

        return region;
    }
}

using System.Buffers.Binary;

namespace ImgTool.Inspect.Partitions;

/// <summary>A GPT header (UEFI 2.10, 5.3.2, table 5-5).</summary>
internal readonly record struct GptHeader(
    uint HeaderBytes,
    uint HeaderCrc,
    long MyLba,
    long AlternateLba,
    long FirstUsableLba,
    long LastUsableLba,
    Guid DiskGuid,
    long EntriesLba,
    uint EntryCount,
    uint EntryBytes,
    uint EntriesCrc)
{
    public const int MinHeaderBytes = 92;
    private const int RevisionField = 8;
    private const int HeaderSizeField = 12;
    private const int HeaderCrcField = 16;
    private const int MyLbaField = 24;
    private const int AlternateLbaField = 32;
    private const int FirstUsableField = 40;
    private const int LastUsableField = 48;
    private const int DiskGuidField = 56;
    private const int EntriesLbaField = 72;
    private const int EntryCountField = 80;
    private const int EntrySizeField = 84;
    private const int EntriesCrcField = 88;

    /// <summary>The entry array is read whole; more than this is not a table anyone made (the usual one is 16 KiB).</summary>
    public const int MaxEntriesBytes = 1 << 20;

    /// <summary>Parses and checks the header in <paramref name="sector"/>; the problem is null when it is good.</summary>
    public static (GptHeader Header, string? Problem) Read(ReadOnlySpan<byte> sector, long expectedLba)
    {
        if (!sector.StartsWith("EFI PART"u8))
        {
            return (default, "no \"EFI PART\" signature");
        }

        var header = new GptHeader(
            BinaryPrimitives.ReadUInt32LittleEndian(sector[HeaderSizeField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(sector[HeaderCrcField..]),
            BinaryPrimitives.ReadInt64LittleEndian(sector[MyLbaField..]),
            BinaryPrimitives.ReadInt64LittleEndian(sector[AlternateLbaField..]),
            BinaryPrimitives.ReadInt64LittleEndian(sector[FirstUsableField..]),
            BinaryPrimitives.ReadInt64LittleEndian(sector[LastUsableField..]),
            new Guid(sector.Slice(DiskGuidField, 16)),
            BinaryPrimitives.ReadInt64LittleEndian(sector[EntriesLbaField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(sector[EntryCountField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(sector[EntrySizeField..]),
            BinaryPrimitives.ReadUInt32LittleEndian(sector[EntriesCrcField..]));
        if (BinaryPrimitives.ReadUInt32LittleEndian(sector[RevisionField..]) >> 16 != 1)
        {
            return (header, "unknown GPT revision");
        }

        if (header.HeaderBytes < MinHeaderBytes || header.HeaderBytes > sector.Length)
        {
            return (header, $"header size {header.HeaderBytes} is out of range");
        }

        Span<byte> copy = stackalloc byte[(int)header.HeaderBytes];
        sector[..copy.Length].CopyTo(copy);
        copy.Slice(HeaderCrcField, 4).Clear();
        uint actual = Disk.Crc32.Compute(copy);
        if (actual != header.HeaderCrc)
        {
            return (header, $"header CRC32 mismatch (stored 0x{header.HeaderCrc:x8}, computed 0x{actual:x8})");
        }

        if (header.MyLba != expectedLba)
        {
            return (header, $"header says it is at LBA {header.MyLba}, found at LBA {expectedLba}");
        }

        if (header.EntryBytes < 128 || header.EntryBytes % 8 != 0 || (long)header.EntryBytes * header.EntryCount > MaxEntriesBytes)
        {
            return (header, $"partition entry array of {header.EntryCount} entries of {header.EntryBytes} bytes is out of range");
        }

        return (header, null);
    }
}

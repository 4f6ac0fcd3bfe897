using System.Buffers.Binary;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Dmg;

/// <summary>The chunk types of a UDIF block table ("blkx" / mish entries).</summary>
internal enum DmgChunkType : uint
{
    Zero = 0x00000000,
    Raw = 0x00000001,
    Ignore = 0x00000002,
    Adc = 0x80000004,
    Zlib = 0x80000005,
    Bzip2 = 0x80000006,
    Lzfse = 0x80000007,
    Lzma = 0x80000008,
    Comment = 0x7ffffffe,
    Last = 0xffffffff,
}

/// <summary>One chunk: a run of disk sectors and where (and how) it is stored in the file.</summary>
internal readonly record struct DmgChunk(DmgChunkType Type, long FirstSector, long SectorCount, long OffsetBytes, long LengthBytes)
{
    public long EndSector => FirstSector + SectorCount;

    /// <summary>Chunks that store nothing read as zeros.</summary>
    public bool IsZero => Type is DmgChunkType.Zero or DmgChunkType.Ignore;

    public static string Describe(DmgChunkType type) => type switch
    {
        DmgChunkType.Lzfse => "LZFSE (ULFO)",
        DmgChunkType.Lzma => "LZMA (ULMO)",
        _ => $"0x{(uint)type:x8}",
    };
}

/// <summary>
/// Parses "mish" block tables (libmodi's "block table", QEMU dmg_read_mish_block): a 204-byte header (signature,
/// version, first sector, sector count, data offset, buffers, descriptor count, checksum, chunk count) followed by
/// 40-byte chunk entries (type, comment, sector number and count relative to the table, offset and length relative to
/// the data fork plus the table's data offset).
/// </summary>
internal static class DmgBlockTable
{
    public const uint Signature = 0x6d697368; // "mish"

    private const int SignatureField = 0;
    private const int VersionField = SignatureField + sizeof(uint);
    private const int FirstSectorField = VersionField + sizeof(uint);
    private const int SectorCountField = FirstSectorField + sizeof(ulong);
    private const int DataOffsetField = SectorCountField + sizeof(ulong);
    public const int HeaderBytes = 204;

    private const int ChunkTypeField = 0;
    private const int ChunkCommentField = ChunkTypeField + sizeof(uint);
    private const int ChunkSectorField = ChunkCommentField + sizeof(uint);
    private const int ChunkSectorCountField = ChunkSectorField + sizeof(ulong);
    private const int ChunkOffsetField = ChunkSectorCountField + sizeof(ulong);
    private const int ChunkLengthField = ChunkOffsetField + sizeof(ulong);
    public const int ChunkBytes = ChunkLengthField + sizeof(ulong);

    /// <summary>Adds the chunks of one resource to <paramref name="chunks"/>. Data that is not a mish table (other
    /// resources of the plist, such as "plst") is skipped, as QEMU does. Comments and the last-entry mark are dropped.</summary>
    public static void Parse(ReadOnlySpan<byte> table, ulong dataForkOffset, long fileLength, List<DmgChunk> chunks, string? fileName)
    {
        if (table.Length < HeaderBytes + ChunkBytes || BinaryPrimitives.ReadUInt32BigEndian(table[SignatureField..]) != Signature)
        {
            return;
        }

        ulong firstSector = BinaryPrimitives.ReadUInt64BigEndian(table[FirstSectorField..]);
        ulong dataOffset = BinaryPrimitives.ReadUInt64BigEndian(table[DataOffsetField..]);
        int count = (table.Length - HeaderBytes) / ChunkBytes;
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> entry = table.Slice(HeaderBytes + (i * ChunkBytes), ChunkBytes);
            var type = (DmgChunkType)BinaryPrimitives.ReadUInt32BigEndian(entry[ChunkTypeField..]);
            if (type is DmgChunkType.Comment or DmgChunkType.Last)
            {
                continue;
            }

            ulong sector = BinaryPrimitives.ReadUInt64BigEndian(entry[ChunkSectorField..]);
            ulong sectorCount = BinaryPrimitives.ReadUInt64BigEndian(entry[ChunkSectorCountField..]);
            ulong offset = BinaryPrimitives.ReadUInt64BigEndian(entry[ChunkOffsetField..]);
            ulong length = BinaryPrimitives.ReadUInt64BigEndian(entry[ChunkLengthField..]);
            bool zero = type is DmgChunkType.Zero or DmgChunkType.Ignore;
            if (sectorCount == 0)
            {
                continue;
            }

            if (sector > DmgLimits.MaxSectorCount || sectorCount > DmgLimits.MaxSectorCount || firstSector > DmgLimits.MaxSectorCount)
            {
                throw new ImageFormatException($"chunk {chunks.Count} starts or ends beyond any disk size (sector {sector} + {sectorCount})", fileName);
            }

            if (!zero && sectorCount > DmgLimits.MaxChunkSectors)
            {
                throw new ImageFormatException($"sector count {sectorCount} for chunk {chunks.Count} is larger than the maximum ({DmgLimits.MaxChunkSectors})", fileName);
            }

            if (!zero && length > DmgLimits.MaxChunkBytes)
            {
                throw new ImageFormatException($"length {length} for chunk {chunks.Count} is larger than the maximum ({DmgLimits.MaxChunkBytes})", fileName);
            }

            ulong start = zero ? 0 : offset + dataOffset + dataForkOffset;
            if (!zero && (offset > (ulong)fileLength || dataOffset > (ulong)fileLength || start > (ulong)fileLength || length > (ulong)fileLength - start))
            {
                throw new ImageCorruptException($"chunk {chunks.Count} ({length} bytes at offset {start}) lies past the end of the file ({fileLength} bytes)", "block table", 0, fileName);
            }

            if (chunks.Count >= DmgLimits.MaxChunks)
            {
                throw new ImageFormatException($"the block tables list more than {DmgLimits.MaxChunks} chunks", fileName);
            }

            chunks.Add(new DmgChunk(type, (long)(sector + firstSector), (long)sectorCount, (long)start, zero ? 0 : (long)length));
        }
    }

    /// <summary>Writes a mish table (tests build images with it).</summary>
    public static byte[] Write(ulong firstSector, ulong sectorCount, ulong dataOffset, IReadOnlyList<(DmgChunkType Type, ulong Sector, ulong SectorCount, ulong Offset, ulong Length)> entries)
    {
        byte[] table = new byte[HeaderBytes + (entries.Count * ChunkBytes)];
        BinaryPrimitives.WriteUInt32BigEndian(table.AsSpan(SignatureField), Signature);
        BinaryPrimitives.WriteUInt32BigEndian(table.AsSpan(VersionField), 1);
        BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(FirstSectorField), firstSector);
        BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(SectorCountField), sectorCount);
        BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(DataOffsetField), dataOffset);
        BinaryPrimitives.WriteUInt32BigEndian(table.AsSpan(HeaderBytes - sizeof(uint)), (uint)entries.Count);
        for (int i = 0; i < entries.Count; i++)
        {
            Span<byte> entry = table.AsSpan(HeaderBytes + (i * ChunkBytes), ChunkBytes);
            BinaryPrimitives.WriteUInt32BigEndian(entry[ChunkTypeField..], (uint)entries[i].Type);
            BinaryPrimitives.WriteUInt64BigEndian(entry[ChunkSectorField..], entries[i].Sector);
            BinaryPrimitives.WriteUInt64BigEndian(entry[ChunkSectorCountField..], entries[i].SectorCount);
            BinaryPrimitives.WriteUInt64BigEndian(entry[ChunkOffsetField..], entries[i].Offset);
            BinaryPrimitives.WriteUInt64BigEndian(entry[ChunkLengthField..], entries[i].Length);
        }

        return table;
    }
}

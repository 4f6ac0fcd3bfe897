using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qcow2;

/// <summary>One persistent dirty bitmap's directory entry (docs/interop/qcow2.txt, "Bitmap directory").</summary>
/// <param name="EntryOffset">Where the entry lies in the file, so its table and flags can be rewritten in place.</param>
internal sealed record Qcow2Bitmap(long EntryOffset, long TableOffset, int TableSize, uint Flags, int GranularityBits, string Name)
{
    /// <summary>The bitmap data may be inconsistent: a program had it open for writing and did not store it.</summary>
    public const uint InUse = 1;

    /// <summary>The bitmap is enabled: it must track every change to the disk.</summary>
    public const uint Auto = 2;

    /// <summary>Unknown extra data does not stop a program from using the bitmap.</summary>
    public const uint ExtraDataCompatible = 4;

    /// <summary>The only bitmap type the spec defines.</summary>
    public const byte DirtyTrackingType = 1;

    public byte Type { get; init; } = DirtyTrackingType;

    public uint ExtraDataBytes { get; init; }

    public bool IsInUse => (Flags & InUse) != 0;

    public bool IsEnabled => (Flags & Auto) != 0;
}

/// <summary>
/// The bitmaps extension: the directory is read to list bitmaps in `info`, to count their clusters in
/// `check`, and to find the bitmaps that writes must keep up to date (<see cref="Qcow2DirtyBitmaps"/>).
/// </summary>
internal static class Qcow2Bitmaps
{
    private const int TableOffsetField = 0;
    private const int TableSizeField = TableOffsetField + 8;
    private const int FlagsField = TableSizeField + 4;
    private const int TypeField = FlagsField + 4;
    private const int GranularityBitsField = TypeField + 1;
    private const int NameSizeField = GranularityBitsField + 1;
    private const int ExtraDataSizeField = NameSizeField + 2;
    private const int FixedLength = ExtraDataSizeField + 4; // 24

    /// <summary>QEMU's limits: 65535 bitmaps, 64 MiB of directory, 1023-byte names.</summary>
    public const int MaxBitmaps = 65535;
    public const long MaxDirectoryBytes = 64L << 20;
    public const long MaxTableBytes = 64L << 20;

    /// <summary>QEMU's BME_MAX_PHYS_SIZE: at most 512 MiB of bitmap data (table entries times the cluster
    /// size), which bounds the memory a bitmap we keep up to date may take.</summary>
    public const long MaxDataBytes = 512L << 20;

    /// <summary>The spec's granularity range, as QEMU checks it: 512 B to 2 GiB per bit.</summary>
    public const int MinGranularityBits = 9;
    public const int MaxGranularityBits = 31;
    public const int MaxNameBytes = 1023;

    /// <summary>Bitmap table entries: bit 0 says "all ones" when there is no cluster, bits 9-55 are the cluster,
    /// bits 1-8 and 56-63 are reserved.</summary>
    public const ulong TableEntryAllOnes = 1;
    public const ulong TableEntryOffsetMask = 0x00ff_ffff_ffff_fe00;
    public const ulong TableEntryReservedMask = 0xff00_0000_0000_01fe;

    /// <summary>Bytes of an entry's table offset, table size and flags, which are rewritten in place together.</summary>
    public const int MutableFieldsLength = TypeField;

    public static long FlagsOffset(Qcow2Bitmap bitmap) => bitmap.EntryOffset + FlagsField;

    /// <summary>The fields of an entry that change when a bitmap is stored or marked in use.</summary>
    public static byte[] MutableFields(long tableOffset, int tableSize, uint flags)
    {
        byte[] fields = new byte[MutableFieldsLength];
        BinaryPrimitives.WriteInt64BigEndian(fields.AsSpan(TableOffsetField), tableOffset);
        BinaryPrimitives.WriteUInt32BigEndian(fields.AsSpan(TableSizeField), (uint)tableSize);
        BinaryPrimitives.WriteUInt32BigEndian(fields.AsSpan(FlagsField), flags);
        return fields;
    }

    /// <summary>Table entries a bitmap of a disk needs: one bit per granule, one cluster of bits per entry.</summary>
    public static long TableEntriesFor(long diskBytes, int granularityBits, long clusterBytes)
    {
        long bits = (diskBytes + (1L << granularityBits) - 1) >> granularityBits;
        long bytes = (bits + 7) / 8;
        return (bytes + clusterBytes - 1) / clusterBytes;
    }

    /// <summary>The bitmaps, or none when the extension is absent or, per the spec, inconsistent (autoclear bit 0 clear).</summary>
    public static async ValueTask<IReadOnlyList<Qcow2Bitmap>> ReadAsync(IHostFile file, Qcow2Header header, CancellationToken cancellationToken)
    {
        byte[]? extension = header.Extensions.FirstOrDefault(e => e.Type == Qcow2HeaderExtension.Bitmaps)?.Data;
        if (extension is null || !header.Autoclear.HasFlag(Qcow2Autoclear.Bitmaps))
        {
            return [];
        }

        if (extension.Length < 24)
        {
            throw new ImageFormatException("bitmaps header extension is too short", file.Path);
        }

        uint count = BinaryPrimitives.ReadUInt32BigEndian(extension);
        long directorySize = BinaryPrimitives.ReadInt64BigEndian(extension.AsSpan(8));
        long directoryOffset = BinaryPrimitives.ReadInt64BigEndian(extension.AsSpan(16));
        if (count == 0 || count > MaxBitmaps || directorySize <= 0 || directorySize > MaxDirectoryBytes
            || directoryOffset <= 0 || (directoryOffset & (header.ClusterSize - 1)) != 0 || directoryOffset + directorySize > file.Length)
        {
            throw new ImageFormatException($"bitmaps extension is invalid ({count} bitmaps, directory of {directorySize} bytes at {directoryOffset})", file.Path);
        }

        byte[] directory = new byte[directorySize];
        await file.ReadZeroFilledAsync(directoryOffset, directory, cancellationToken).ConfigureAwait(false);
        var bitmaps = new List<Qcow2Bitmap>();
        int position = 0;
        for (uint i = 0; i < count; i++)
        {
            if (position + FixedLength > directory.Length)
            {
                throw new ImageFormatException("bitmap directory is truncated", file.Path);
            }

            ReadOnlySpan<byte> entry = directory.AsSpan(position);
            int nameSize = BinaryPrimitives.ReadUInt16BigEndian(entry[NameSizeField..]);
            uint extraSize = BinaryPrimitives.ReadUInt32BigEndian(entry[ExtraDataSizeField..]);
            long length = FixedLength + (long)extraSize + nameSize;
            if (position + length > directory.Length)
            {
                throw new ImageFormatException("bitmap directory is truncated", file.Path);
            }

            long tableOffset = BinaryPrimitives.ReadInt64BigEndian(entry[TableOffsetField..]);
            uint tableSize = BinaryPrimitives.ReadUInt32BigEndian(entry[TableSizeField..]);
            if (tableSize * 8L > MaxTableBytes)
            {
                throw new ImageFormatException($"bitmap table of {tableSize} entries is too large", file.Path);
            }

            bitmaps.Add(new Qcow2Bitmap(
                directoryOffset + position,
                tableOffset,
                (int)tableSize,
                BinaryPrimitives.ReadUInt32BigEndian(entry[FlagsField..]),
                entry[GranularityBitsField],
                Encoding.UTF8.GetString(entry.Slice(FixedLength + (int)extraSize, nameSize)))
            {
                Type = entry[TypeField],
                ExtraDataBytes = extraSize,
            });
            position += (int)((length + 7) & ~7L);
        }

        return bitmaps;
    }

    /// <summary>Clusters a bitmap uses: its table and the data clusters the table points to.</summary>
    public static async ValueTask<IReadOnlyList<long>> DataClustersAsync(IHostFile file, Qcow2Bitmap bitmap, CancellationToken cancellationToken)
    {
        ulong[] table = await ReadTableAsync(file, bitmap, cancellationToken).ConfigureAwait(false);
        return [.. table.Select(e => (long)(e & TableEntryOffsetMask)).Where(offset => offset != 0)];
    }

    public static async ValueTask<ulong[]> ReadTableAsync(IHostFile file, Qcow2Bitmap bitmap, CancellationToken cancellationToken)
    {
        byte[] raw = new byte[bitmap.TableSize * 8L];
        await file.ReadZeroFilledAsync(bitmap.TableOffset, raw, cancellationToken).ConfigureAwait(false);
        ulong[] table = new ulong[bitmap.TableSize];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = BinaryPrimitives.ReadUInt64BigEndian(raw.AsSpan(i * 8));
        }

        return table;
    }

    public static byte[] SerializeTable(ReadOnlySpan<ulong> table)
    {
        byte[] raw = new byte[table.Length * 8L];
        for (int i = 0; i < table.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(raw.AsSpan(i * 8), table[i]);
        }

        return raw;
    }
}

using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qcow2;

/// <summary>One persistent dirty bitmap's directory entry (docs/interop/qcow2.txt, "Bitmap directory").</summary>
/// <param name="EntryOffset">Where the entry lies in the file, so its flags can be rewritten.</param>
internal sealed record Qcow2Bitmap(long EntryOffset, long TableOffset, int TableSize, uint Flags, int GranularityBits, string Name)
{
    public const uint InUse = 1;
    public const uint Auto = 2;
}

/// <summary>
/// The bitmaps extension: the directory is read to list bitmaps in `info`, to count their clusters in
/// `check`, and to mark them in use before we write (we do not update bitmaps, and an in-use bitmap is
/// the spec's way of saying "inconsistent"; QEMU does the same while it has an image open).
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

    public static long FlagsOffset(Qcow2Bitmap bitmap) => bitmap.EntryOffset + FlagsField;

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
                Encoding.UTF8.GetString(entry.Slice(FixedLength + (int)extraSize, nameSize))));
            position += (int)((length + 7) & ~7L);
        }

        return bitmaps;
    }

    /// <summary>Clusters a bitmap uses: its table and the data clusters the table points to.</summary>
    public static async ValueTask<IReadOnlyList<long>> DataClustersAsync(IHostFile file, Qcow2Bitmap bitmap, CancellationToken cancellationToken)
    {
        byte[] table = new byte[bitmap.TableSize * 8L];
        await file.ReadZeroFilledAsync(bitmap.TableOffset, table, cancellationToken).ConfigureAwait(false);
        var clusters = new List<long>();
        for (int i = 0; i < bitmap.TableSize; i++)
        {
            long offset = (long)(BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(i * 8)) & Qcow2L2Entry.OffsetMask);
            if (offset != 0)
            {
                clusters.Add(offset);
            }
        }

        return clusters;
    }
}

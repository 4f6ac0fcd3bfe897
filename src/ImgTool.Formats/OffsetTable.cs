using System.Buffers.Binary;
using ImgTool.Block.Host;

namespace ImgTool.Formats;

/// <summary>The byte order a format stores its tables in: qcow2 is big-endian throughout, QED little-endian.</summary>
internal enum TableByteOrder
{
    BigEndian,
    LittleEndian,
}

/// <summary>
/// Tables of 64-bit entries (qcow2 L1 and refcount tables, QED L1 and L2 tables) converted between their on-disk
/// bytes and <c>long</c>s. One loop for every format, so the byte order is the only thing a format chooses.
/// </summary>
internal static class OffsetTable
{
    public const int EntryBytes = sizeof(long);

    /// <summary>Decodes <paramref name="entries"/>.Length entries from the start of <paramref name="raw"/>.</summary>
    public static void Decode(ReadOnlySpan<byte> raw, Span<long> entries, TableByteOrder order)
    {
        if (raw.Length < entries.Length * EntryBytes)
        {
            throw new ArgumentException("the buffer is shorter than the table", nameof(raw));
        }

        for (int i = 0; i < entries.Length; i++)
        {
            ReadOnlySpan<byte> entry = raw.Slice(i * EntryBytes, EntryBytes);
            entries[i] = order == TableByteOrder.BigEndian ? BinaryPrimitives.ReadInt64BigEndian(entry) : BinaryPrimitives.ReadInt64LittleEndian(entry);
        }
    }

    /// <summary>Encodes the entries into the start of <paramref name="raw"/>.</summary>
    public static void Encode(ReadOnlySpan<long> entries, Span<byte> raw, TableByteOrder order)
    {
        if (raw.Length < entries.Length * EntryBytes)
        {
            throw new ArgumentException("the buffer is shorter than the table", nameof(raw));
        }

        for (int i = 0; i < entries.Length; i++)
        {
            Span<byte> entry = raw.Slice(i * EntryBytes, EntryBytes);
            if (order == TableByteOrder.BigEndian)
            {
                BinaryPrimitives.WriteInt64BigEndian(entry, entries[i]);
            }
            else
            {
                BinaryPrimitives.WriteInt64LittleEndian(entry, entries[i]);
            }
        }
    }

    /// <summary>The table's bytes, zero-padded to <paramref name="totalBytes"/> when that is larger (a table padded
    /// to whole clusters).</summary>
    public static byte[] Serialize(ReadOnlySpan<long> entries, TableByteOrder order, long totalBytes = 0)
    {
        byte[] raw = new byte[Math.Max(totalBytes, entries.Length * (long)EntryBytes)];
        Encode(entries, raw, order);
        return raw;
    }

    /// <summary>Reads <paramref name="count"/> entries at <paramref name="offsetBytes"/>; past the end of the file
    /// reads as zero entries.</summary>
    public static async ValueTask<long[]> ReadAsync(IHostFile file, long offsetBytes, int count, TableByteOrder order, CancellationToken cancellationToken)
    {
        byte[] raw = new byte[count * (long)EntryBytes];
        await file.ReadZeroFilledAsync(offsetBytes, raw, cancellationToken).ConfigureAwait(false);
        long[] entries = new long[count];
        Decode(raw, entries, order);
        return entries;
    }
}

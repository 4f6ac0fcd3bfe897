using System.Buffers.Binary;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vhdx;

/// <summary>One change a log entry makes to the file: 4 KiB of data, or a run of zeros.</summary>
internal readonly record struct VhdxLogWrite(long FileOffsetBytes, byte[]? Data, long ZeroLengthBytes)
{
    public long LengthBytes => Data?.Length ?? ZeroLengthBytes;
}

/// <summary>
/// The metadata log (spec 2.3): a circular buffer of entries, each a header, descriptors and data
/// sectors under one CRC-32C. On open, the active sequence is replayed; on write, every metadata
/// change goes through an entry first, so a crash between the two leaves a log that replays it.
/// </summary>
internal static class VhdxLog
{
    public const int SectorBytes = 4096;
    public const uint EntrySignature = 0x65676F6C; // "loge"
    public const uint DataDescriptorSignature = 0x63736564; // "desc"
    public const uint ZeroDescriptorSignature = 0x6F72657A; // "zero"
    public const uint DataSectorSignature = 0x61746164; // "data"

    // Entry header (spec 2.3.1.1), 64 bytes.
    public const int HeaderBytes = 64;
    public const int SignatureOffset = 0;
    public const int ChecksumOffset = SignatureOffset + 4;
    public const int EntryLengthOffset = ChecksumOffset + 4;
    public const int TailOffset = EntryLengthOffset + 4;
    public const int SequenceNumberOffset = TailOffset + 4;
    public const int DescriptorCountOffset = SequenceNumberOffset + 8;
    public const int LogGuidOffset = DescriptorCountOffset + 8;
    public const int FlushedFileOffsetOffset = LogGuidOffset + 16;
    public const int LastFileOffsetOffset = FlushedFileOffsetOffset + 8;

    // Descriptors (spec 2.3.1.2, 2.3.1.3), 32 bytes each, after the header.
    public const int DescriptorBytes = 32;
    public const int DescTrailingOffset = 4;
    public const int DescLeadingOrZeroLengthOffset = 8;
    public const int DescFileOffsetOffset = 16;
    public const int DescSequenceOffset = 24;

    // Data sector (spec 2.3.1.4): the sector's bytes 8..4091; the first 8 and last 4 are in the descriptor.
    public const int DataSeqHighOffset = 4;
    public const int DataPayloadOffset = 8;
    public const int DataSeqLowOffset = SectorBytes - 4;

    /// <summary>The largest log read whole into memory for replay.</summary>
    public const long MaxReplayLogBytes = 256 * VhdxLimits.MiB;

    public static int DescriptorSectors(int descriptorCount) => (HeaderBytes + (descriptorCount * DescriptorBytes) + SectorBytes - 1) / SectorBytes;

    /// <summary>The changes the active sequence makes, in order, and the file size it needs; empty when the log holds nothing to replay.</summary>
    public static async ValueTask<(List<VhdxLogWrite> Writes, long LastFileOffset)> ReadActiveSequenceAsync(
        IHostFile file, VhdxHeader header, CancellationToken cancellationToken)
    {
        string path = file.Path;
        long logLength = header.LogLengthBytes;
        if (logLength > MaxReplayLogBytes)
        {
            throw new UnsupportedFeatureException($"the log to replay is {logLength} bytes, more than {MaxReplayLogBytes} this build replays", path);
        }

        byte[] log = new byte[logLength];
        await file.ReadZeroFilledAsync((long)header.LogOffsetBytes, log, cancellationToken).ConfigureAwait(false);

        var entries = new Dictionary<long, Entry>();
        for (long offset = 0; offset < logLength; offset += SectorBytes)
        {
            if (TryParse(log, offset, header.LogGuid) is { } entry)
            {
                entries[offset] = entry;
            }
        }

        if (entries.Count == 0)
        {
            return ([], 0);
        }

        Entry head = entries.Values.MaxBy(e => e.Sequence)!;
        if (!entries.TryGetValue(head.Tail, out Entry? current))
        {
            throw new ImageCorruptException("the log's active sequence starts at an entry that is missing or damaged, so it cannot be replayed", "log", (long)header.LogOffsetBytes + head.Tail, path);
        }

        var sequence = new List<Entry> { current };
        while (current.Sequence != head.Sequence)
        {
            long next = (current.Offset + current.Length) % logLength;
            if (sequence.Count > entries.Count || !entries.TryGetValue(next, out Entry? following) || following.Sequence != current.Sequence + 1)
            {
                throw new ImageCorruptException("the log's active sequence is broken, so it cannot be replayed", "log", (long)header.LogOffsetBytes + next, path);
            }

            sequence.Add(following);
            current = following;
        }

        long limit = Math.Max(file.Length, (long)Math.Min(head.LastFileOffset, (ulong)VhdxLimits.MaxFileOffsetBytes));
        var writes = new List<VhdxLogWrite>();
        foreach (Entry entry in sequence)
        {
            foreach (VhdxLogWrite write in entry.Writes)
            {
                if (write.FileOffsetBytes < VhdxLayout.HeaderSectionEnd || write.LengthBytes > limit || write.FileOffsetBytes > limit - write.LengthBytes)
                {
                    throw new ImageCorruptException(
                        $"a log entry writes {write.LengthBytes} bytes at {write.FileOffsetBytes}, outside the file (its end is {limit})",
                        "log", (long)header.LogOffsetBytes + entry.Offset, path);
                }

                writes.Add(write);
                if (writes.Count > VhdxLimits.MaxReplayPatches)
                {
                    throw new ImageCorruptException("the log holds more changes than can be replayed", "log", (long)header.LogOffsetBytes, path);
                }
            }
        }

        return (writes, (long)Math.Min(head.LastFileOffset, (ulong)limit));
    }

    /// <summary>Builds one log entry that carries whole 4 KiB pages; its tail is itself, so it replays on its own.</summary>
    public static byte[] BuildEntry(IReadOnlyList<(long FileOffset, byte[] Page)> pages, ulong sequence, Guid logGuid, uint tail, long fileLength)
    {
        int descriptorSectors = DescriptorSectors(pages.Count);
        byte[] entry = new byte[(descriptorSectors + pages.Count) * SectorBytes];
        Span<byte> h = entry;
        BinaryPrimitives.WriteUInt32LittleEndian(h[SignatureOffset..], EntrySignature);
        BinaryPrimitives.WriteUInt32LittleEndian(h[EntryLengthOffset..], (uint)entry.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[TailOffset..], tail);
        BinaryPrimitives.WriteUInt64LittleEndian(h[SequenceNumberOffset..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(h[DescriptorCountOffset..], (uint)pages.Count);
        logGuid.TryWriteBytes(h.Slice(LogGuidOffset, 16));
        BinaryPrimitives.WriteUInt64LittleEndian(h[FlushedFileOffsetOffset..], (ulong)fileLength);
        BinaryPrimitives.WriteUInt64LittleEndian(h[LastFileOffsetOffset..], (ulong)fileLength);
        for (int i = 0; i < pages.Count; i++)
        {
            byte[] page = pages[i].Page;
            Span<byte> d = entry.AsSpan(HeaderBytes + (i * DescriptorBytes), DescriptorBytes);
            BinaryPrimitives.WriteUInt32LittleEndian(d, DataDescriptorSignature);
            page.AsSpan(SectorBytes - 4, 4).CopyTo(d[DescTrailingOffset..]);
            page.AsSpan(0, 8).CopyTo(d[DescLeadingOrZeroLengthOffset..]);
            BinaryPrimitives.WriteUInt64LittleEndian(d[DescFileOffsetOffset..], (ulong)pages[i].FileOffset);
            BinaryPrimitives.WriteUInt64LittleEndian(d[DescSequenceOffset..], sequence);

            Span<byte> s = entry.AsSpan((descriptorSectors + i) * SectorBytes, SectorBytes);
            BinaryPrimitives.WriteUInt32LittleEndian(s, DataSectorSignature);
            BinaryPrimitives.WriteUInt32LittleEndian(s[DataSeqHighOffset..], (uint)(sequence >> 32));
            page.AsSpan(8, SectorBytes - 12).CopyTo(s[DataPayloadOffset..]);
            BinaryPrimitives.WriteUInt32LittleEndian(s[DataSeqLowOffset..], (uint)sequence);
        }

        Crc32C.Stamp(entry, ChecksumOffset);
        return entry;
    }

    private static Entry? TryParse(byte[] log, long offset, Guid logGuid)
    {
        ReadOnlySpan<byte> h = log.AsSpan((int)offset, SectorBytes);
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != EntrySignature || new Guid(h.Slice(LogGuidOffset, 16)) != logGuid)
        {
            return null;
        }

        long length = BinaryPrimitives.ReadUInt32LittleEndian(h[EntryLengthOffset..]);
        long tail = BinaryPrimitives.ReadUInt32LittleEndian(h[TailOffset..]);
        ulong sequence = BinaryPrimitives.ReadUInt64LittleEndian(h[SequenceNumberOffset..]);
        long count = BinaryPrimitives.ReadUInt32LittleEndian(h[DescriptorCountOffset..]);
        if (length == 0 || length % SectorBytes != 0 || length > log.Length || length > VhdxLimits.MaxLogEntryBytes
            || tail % SectorBytes != 0 || tail >= log.Length || sequence == 0
            || count > length / DescriptorBytes)
        {
            return null;
        }

        int descriptorSectors = DescriptorSectors((int)count);
        if (descriptorSectors * (long)SectorBytes > length)
        {
            return null;
        }

        // The entry may wrap around the end of the circular log.
        byte[] entry = new byte[length];
        for (long done = 0; done < length; done += SectorBytes)
        {
            Array.Copy(log, (offset + done) % log.Length, entry, done, SectorBytes);
        }

        if (!Crc32C.Verify(entry, ChecksumOffset))
        {
            return null;
        }

        var writes = new List<VhdxLogWrite>((int)count);
        int dataSector = descriptorSectors;
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> d = entry.AsSpan(HeaderBytes + (i * DescriptorBytes), DescriptorBytes);
            uint signature = BinaryPrimitives.ReadUInt32LittleEndian(d);
            long fileOffset = (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(d[DescFileOffsetOffset..]), (ulong)long.MaxValue);
            if (BinaryPrimitives.ReadUInt64LittleEndian(d[DescSequenceOffset..]) != sequence || fileOffset % SectorBytes != 0)
            {
                return null;
            }

            if (signature == ZeroDescriptorSignature)
            {
                ulong zeroLength = BinaryPrimitives.ReadUInt64LittleEndian(d[DescLeadingOrZeroLengthOffset..]);
                if (zeroLength % SectorBytes != 0 || zeroLength > (ulong)VhdxLimits.MaxFileOffsetBytes)
                {
                    return null;
                }

                writes.Add(new VhdxLogWrite(fileOffset, null, (long)zeroLength));
            }
            else if (signature == DataDescriptorSignature)
            {
                if ((dataSector + 1) * (long)SectorBytes > length)
                {
                    return null;
                }

                ReadOnlySpan<byte> s = entry.AsSpan(dataSector * SectorBytes, SectorBytes);
                ulong high = BinaryPrimitives.ReadUInt32LittleEndian(s[DataSeqHighOffset..]);
                ulong low = BinaryPrimitives.ReadUInt32LittleEndian(s[DataSeqLowOffset..]);
                if (BinaryPrimitives.ReadUInt32LittleEndian(s) != DataSectorSignature || ((high << 32) | low) != sequence)
                {
                    return null;
                }

                byte[] page = new byte[SectorBytes];
                d.Slice(DescLeadingOrZeroLengthOffset, 8).CopyTo(page);
                s.Slice(DataPayloadOffset, SectorBytes - 12).CopyTo(page.AsSpan(8));
                d.Slice(DescTrailingOffset, 4).CopyTo(page.AsSpan(SectorBytes - 4));
                writes.Add(new VhdxLogWrite(fileOffset, page, 0));
                dataSector++;
            }
            else
            {
                return null;
            }
        }

        ulong lastFileOffset = BinaryPrimitives.ReadUInt64LittleEndian(h[LastFileOffsetOffset..]);
        return new Entry(offset, length, tail, sequence, lastFileOffset, writes);
    }

    private sealed record Entry(long Offset, long Length, long Tail, ulong Sequence, ulong LastFileOffset, List<VhdxLogWrite> Writes);
}

using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// Keeps the enabled persistent dirty bitmaps up to date while the image is written, as QEMU does
/// (block/qcow2-bitmap.c): before the first change they are flagged in use (so a crash leaves them marked
/// inconsistent rather than silently stale), every write, write-zeroes and discard sets the bits of the
/// granules it covers, and on close the changed bitmap clusters go to new clusters, a new table points at
/// them, the directory entry is switched to the new table with the in-use flag cleared, and only then are
/// the replaced clusters freed. Disabled bitmaps (no `auto` flag) do not track writes and are left as they
/// are; bitmaps already in use when we open are inconsistent and are left alone too.
/// </summary>
/// <remarks>
/// Only the bitmap clusters a write touches are held in memory, loaded on first use; a bitmap's data is at
/// most <see cref="Qcow2Bitmaps.MaxDataBytes"/> (QEMU's limit, which it keeps wholly in memory), checked
/// before tracking starts.
/// </remarks>
internal sealed class Qcow2DirtyBitmaps
{
    private readonly Qcow2Image _image;
    private readonly List<TrackedBitmap> _tracked;

    private Qcow2DirtyBitmaps(Qcow2Image image, List<TrackedBitmap> tracked)
    {
        _image = image;
        _tracked = tracked;
    }

    private long ClusterBytes => _image.ClusterSize;

    private long BitsPerCluster => _image.ClusterSize * 8;

    /// <summary>
    /// Checks every bitmap (an image QEMU would refuse to open is not written here either), reads the tables of
    /// the enabled consistent ones and flags those in use on disk. Returns null when nothing needs tracking.
    /// </summary>
    public static async ValueTask<Qcow2DirtyBitmaps?> StartAsync(Qcow2Image image, CancellationToken cancellationToken)
    {
        var tracked = new List<TrackedBitmap>();
        foreach (Qcow2Bitmap bitmap in image.Bitmaps)
        {
            CheckUsable(image, bitmap);
            if (bitmap.IsInUse || !bitmap.IsEnabled)
            {
                continue;
            }

            ulong[] table = await Qcow2Bitmaps.ReadTableAsync(image.HostFile, bitmap, cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < table.Length; i++)
            {
                CheckTableEntry(image, bitmap, i, table[i]);
            }

            tracked.Add(new TrackedBitmap(bitmap, table, DivideRoundingUp(image.SizeBytes, 1L << bitmap.GranularityBits)));
        }

        if (tracked.Count == 0)
        {
            return null;
        }

        await image.RewriteBitmapEntriesAsync(
            [.. tracked.Select(t => t.Entry with { Flags = t.Entry.Flags | Qcow2Bitmap.InUse })],
            cancellationToken).ConfigureAwait(false);
        return new Qcow2DirtyBitmaps(image, tracked);
    }

    /// <summary>Sets the bits of every granule that [offset, offset + length) touches, in every enabled bitmap.</summary>
    public async ValueTask MarkAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken)
    {
        if (lengthBytes <= 0)
        {
            return;
        }

        foreach (TrackedBitmap bitmap in _tracked)
        {
            int granularityBits = bitmap.Entry.GranularityBits;
            long bit = offsetBytes >> granularityBits;
            long lastBit = Math.Min((offsetBytes + lengthBytes - 1) >> granularityBits, bitmap.Bits - 1);
            while (bit <= lastBit)
            {
                int index = (int)(bit / BitsPerCluster);
                long clusterFirstBit = index * BitsPerCluster;
                long end = Math.Min(lastBit, clusterFirstBit + BitsPerCluster - 1);
                byte[] data = await ClusterAsync(bitmap, index, cancellationToken).ConfigureAwait(false);
                SetBits(data, bit - clusterFirstBit, end - bit + 1);
                bit = end + 1;
            }
        }
    }

    /// <summary>Writes the bitmaps back and clears their in-use flags (QEMU's store on close).</summary>
    public async ValueTask StoreAsync(CancellationToken cancellationToken)
    {
        var entries = new List<Qcow2Bitmap>();
        var replaced = new List<(long Offset, long Clusters)>();
        foreach (TrackedBitmap bitmap in _tracked)
        {
            uint flags = bitmap.Entry.Flags & ~Qcow2Bitmap.InUse;
            if (bitmap.Changed.Count == 0)
            {
                entries.Add(bitmap.Entry with { Flags = flags });
                continue;
            }

            ulong[] table = (ulong[])bitmap.Table.Clone();
            foreach ((int index, byte[] data) in bitmap.Changed.OrderBy(c => c.Key))
            {
                long old = (long)(bitmap.Table[index] & Qcow2Bitmaps.TableEntryOffsetMask);
                if (old != 0)
                {
                    replaced.Add((old, 1));
                }

                if (data.AsSpan().IndexOfAnyExcept((byte)0) < 0)
                {
                    table[index] = 0; // the spec: an all-zero cluster needs no data
                    continue;
                }

                long cluster = await _image.Refcounts.AllocateAsync(1, cancellationToken).ConfigureAwait(false);
                await _image.HostFile.WriteAsync(cluster, data, cancellationToken).ConfigureAwait(false);
                table[index] = (ulong)cluster;
            }

            byte[] raw = Qcow2Bitmaps.SerializeTable(table);
            long tableClusters = DivideRoundingUp(raw.Length, ClusterBytes);
            long tableOffset = await _image.Refcounts.AllocateAsync(tableClusters, cancellationToken).ConfigureAwait(false);
            Array.Resize(ref raw, (int)(tableClusters * ClusterBytes));
            await _image.HostFile.WriteAsync(tableOffset, raw, cancellationToken).ConfigureAwait(false);
            replaced.Add((bitmap.Entry.TableOffset, DivideRoundingUp(bitmap.Entry.TableSize * 8L, ClusterBytes)));
            entries.Add(bitmap.Entry with { TableOffset = tableOffset, TableSize = table.Length, Flags = flags });
        }

        // The new data and tables are on disk before the directory points at them; the old clusters are
        // freed only after it does, so a crash in between leaks clusters but never loses a bitmap.
        await _image.HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
        await _image.RewriteBitmapEntriesAsync(entries, cancellationToken).ConfigureAwait(false);
        foreach ((long offset, long clusters) in replaced)
        {
            await _image.FreeMetadataClustersAsync(offset, clusters, cancellationToken).ConfigureAwait(false);
        }

        _tracked.Clear();
    }

    /// <summary>The constraints QEMU checks when it loads a bitmap (check_dir_entry, load_bitmap_data), so
    /// that a bitmap we cannot keep correct stops the write with a clear error instead of going stale.</summary>
    private static void CheckUsable(Qcow2Image image, Qcow2Bitmap bitmap)
    {
        string? problem = bitmap switch
        {
            { Type: not Qcow2Bitmap.DirtyTrackingType } => $"has unknown type {bitmap.Type}",
            { GranularityBits: < Qcow2Bitmaps.MinGranularityBits or > Qcow2Bitmaps.MaxGranularityBits } =>
                $"has granularity_bits {bitmap.GranularityBits} outside {Qcow2Bitmaps.MinGranularityBits}..{Qcow2Bitmaps.MaxGranularityBits}",
            { Flags: > (Qcow2Bitmap.InUse | Qcow2Bitmap.Auto | Qcow2Bitmap.ExtraDataCompatible) } => $"has unknown flags 0x{bitmap.Flags:x}",
            { ExtraDataBytes: > 0 } when (bitmap.Flags & Qcow2Bitmap.ExtraDataCompatible) == 0 =>
                "has extra data this program does not know, without the extra_data_compatible flag",
            { TableSize: 0 } or { TableOffset: <= 0 } => "has no bitmap table",
            _ when (bitmap.TableOffset & (image.ClusterSize - 1)) != 0 => $"has a bitmap table at unaligned offset {bitmap.TableOffset}",
            _ when bitmap.TableSize * image.ClusterSize > Qcow2Bitmaps.MaxDataBytes =>
                $"is too large ({bitmap.TableSize * image.ClusterSize} bytes of bitmap data; the limit is {Qcow2Bitmaps.MaxDataBytes} bytes, use a larger granularity)",
            _ when !bitmap.IsInUse && bitmap.TableSize != Qcow2Bitmaps.TableEntriesFor(image.SizeBytes, bitmap.GranularityBits, image.ClusterSize) =>
                $"has {bitmap.TableSize} table entries but a disk of {image.SizeBytes} bytes needs {Qcow2Bitmaps.TableEntriesFor(image.SizeBytes, bitmap.GranularityBits, image.ClusterSize)}",
            _ => null,
        };
        if (problem is not null)
        {
            throw new UnsupportedFeatureException($"cannot write: persistent dirty bitmap '{bitmap.Name}' {problem}", image.HostFile.Path);
        }
    }

    private static void CheckTableEntry(Qcow2Image image, Qcow2Bitmap bitmap, int index, ulong entry)
    {
        long offset = (long)(entry & Qcow2Bitmaps.TableEntryOffsetMask);
        if ((entry & Qcow2Bitmaps.TableEntryReservedMask) != 0
            || (offset != 0 && ((entry & Qcow2Bitmaps.TableEntryAllOnes) != 0 || (offset & (image.ClusterSize - 1)) != 0)))
        {
            throw new ImageCorruptException($"bitmap '{bitmap.Name}' has an invalid table entry {index} (0x{entry:x16})", "bitmap table", bitmap.TableOffset + (index * 8L), image.HostFile.Path);
        }
    }

    /// <summary>A cluster of bitmap data, made changeable: read from its cluster, or all zeros / all ones as its
    /// table entry says.</summary>
    private async ValueTask<byte[]> ClusterAsync(TrackedBitmap bitmap, int index, CancellationToken cancellationToken)
    {
        if (bitmap.Changed.TryGetValue(index, out byte[]? data))
        {
            return data;
        }

        data = new byte[ClusterBytes];
        ulong entry = bitmap.Table[index];
        long offset = (long)(entry & Qcow2Bitmaps.TableEntryOffsetMask);
        if (offset != 0)
        {
            await _image.HostFile.ReadZeroFilledAsync(offset, data, cancellationToken).ConfigureAwait(false);
        }
        else if ((entry & Qcow2Bitmaps.TableEntryAllOnes) != 0)
        {
            data.AsSpan().Fill(0xff);
        }

        // Bits past the end of the disk are meaningless; QEMU writes them as zeros.
        long validBits = bitmap.Bits - (index * BitsPerCluster);
        if (validBits < BitsPerCluster)
        {
            ClearBitsFrom(data, validBits);
        }

        bitmap.Changed[index] = data;
        return data;
    }

    /// <summary>Bit n of the bitmap is bit (n % 8) of byte (n / 8), least significant first (the spec's
    /// "bit 0 of byte 0 is the first granule").</summary>
    public static void SetBits(Span<byte> data, long firstBit, long count)
    {
        long bit = firstBit;
        long end = firstBit + count;
        while (bit < end && (bit & 7) != 0)
        {
            data[(int)(bit >> 3)] |= (byte)(1 << (int)(bit & 7));
            bit++;
        }

        long wholeBytes = (end - bit) >> 3;
        data.Slice((int)(bit >> 3), (int)wholeBytes).Fill(0xff);
        bit += wholeBytes * 8;
        while (bit < end)
        {
            data[(int)(bit >> 3)] |= (byte)(1 << (int)(bit & 7));
            bit++;
        }
    }

    private static void ClearBitsFrom(Span<byte> data, long firstBit)
    {
        int firstWholeByte = (int)((firstBit + 7) >> 3);
        if ((firstBit & 7) != 0)
        {
            data[(int)(firstBit >> 3)] &= (byte)((1 << (int)(firstBit & 7)) - 1);
        }

        data[firstWholeByte..].Clear();
    }

    private static long DivideRoundingUp(long value, long divisor) => (value + divisor - 1) / divisor;

    /// <summary>One bitmap being kept up to date: its on-disk entry and table, and the clusters changed so far.</summary>
    private sealed class TrackedBitmap(Qcow2Bitmap entry, ulong[] table, long bits)
    {
        public Qcow2Bitmap Entry { get; } = entry;

        public ulong[] Table { get; } = table;

        /// <summary>Granules of the disk: the bits that mean something.</summary>
        public long Bits { get; } = bits;

        public Dictionary<int, byte[]> Changed { get; } = [];
    }
}

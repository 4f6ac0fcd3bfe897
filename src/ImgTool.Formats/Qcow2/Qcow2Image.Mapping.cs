using System.Buffers.Binary;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qcow2;

internal enum Qcow2ExtentKind
{
    Unallocated,
    Zero,
    Data,
    Compressed,
}

/// <summary>A run of guest bytes with one meaning: where Data lives (HostOffset) or the compressed descriptor.
/// Zero and Unallocated runs have a HostOffset too when their cluster has a host cluster (QEMU's "zero, allocated"
/// and, with extended L2, "unallocated, allocated"), which QEMU's block status reports; -1 otherwise.</summary>
internal readonly record struct Qcow2Extent(Qcow2ExtentKind Kind, long LengthBytes, long HostOffset, ulong Descriptor)
{
    /// <summary>Whether <paramref name="next"/>, starting <paramref name="distance"/> bytes after this run, continues it.</summary>
    public bool IsContinuedBy(Qcow2Extent next, long distance) =>
        next.Kind == Kind
        && (HostOffset < 0 ? next.HostOffset < 0 : next.HostOffset == HostOffset + distance);
}

/// <summary>
/// Where qcow2 maps a guest offset to a host cluster, both ways: the L1 -> L2 -> cluster walk and the classification
/// of an L2 entry for reads and block status, and the L2 tables made writable (allocated, or copied away from a
/// snapshot) and the L1/L2 entries updated for writes. QED's walk is QedImage.Mapping.cs, VDI's block map VdiBlockMap.cs.
/// </summary>
internal sealed partial class Qcow2Image
{
    public (ulong Entry, ulong Bitmap) ReadL2Entry(byte[] table, long index)
    {
        int at = (int)(index * _l2EntryBytes);
        ulong entry = BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(at));
        ulong bitmap = _l2EntryBytes == 16 ? BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(at + 8)) : 0;
        return (entry, bitmap);
    }

    public void WriteL2Entry(byte[] table, long index, ulong entry, ulong bitmap)
    {
        int at = (int)(index * _l2EntryBytes);
        BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(at), entry);
        if (_l2EntryBytes == 16)
        {
            BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(at + 8), bitmap);
        }
    }

    /// <summary>Whether a standard (not compressed) L2 entry names a host cluster. Offset 0 normally means it
    /// does not, but with an external data file guest cluster 0 lives at host offset 0; the spec tells the two
    /// apart by bit 63, which every allocated cluster there has (its refcount is implicitly one).</summary>
    public bool HasHostCluster(ulong entry) =>
        (entry & Qcow2L2Entry.OffsetMask) != 0 || (HasExternalDataFile && (entry & Qcow2L2Entry.Copied) != 0);

    /// <summary>The L2 table for an L1 index, or null when unallocated. Caller holds the lock.</summary>
    private async ValueTask<byte[]?> GetL2Async(long l1Index, CancellationToken cancellationToken)
    {
        if (l1Index >= L1.Length)
        {
            return null;
        }

        ulong l1Entry = (ulong)L1[l1Index];
        long l2Offset = (long)(l1Entry & Qcow2L2Entry.OffsetMask);
        if (l2Offset == 0)
        {
            return null;
        }

        if ((l2Offset & (ClusterSize - 1)) != 0 || l2Offset + ClusterSize > HostFile.Length)
        {
            throw new ImageCorruptException($"L2 table offset {l2Offset} (L1 index {l1Index}) is unaligned or beyond the end of the file", "L1 table", Header.L1TableOffset + (l1Index * 8), HostFile.Path);
        }

        return await L2Cache.GetAsync(l2Offset, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The run starting at <paramref name="offsetBytes"/> (at most <paramref name="maxLength"/>, never crossing
    /// an L2 table) that has one meaning. Caller holds the lock.</summary>
    private async ValueTask<Qcow2Extent> ResolveAsync(long offsetBytes, long maxLength, CancellationToken cancellationToken)
    {
        long l2Span = ClusterSize << _l2Bits;
        long l1Index = offsetBytes / l2Span;
        long limit = Math.Min(maxLength, ((l1Index + 1) * l2Span) - offsetBytes);
        byte[]? table = await GetL2Async(l1Index, cancellationToken).ConfigureAwait(false);
        if (table is null)
        {
            return new Qcow2Extent(Qcow2ExtentKind.Unallocated, limit, -1, 0);
        }

        Qcow2Extent first = Classify(table, offsetBytes, out long granuleEnd);
        if (first.Kind == Qcow2ExtentKind.Compressed)
        {
            return first with { LengthBytes = Math.Min(limit, granuleEnd - offsetBytes) };
        }

        long position = granuleEnd;
        long end = offsetBytes + limit;
        while (position < end)
        {
            Qcow2Extent next = Classify(table, position, out long nextEnd);
            if (!first.IsContinuedBy(next, position - offsetBytes))
            {
                break;
            }

            position = nextEnd;
        }

        return first with { LengthBytes = Math.Min(position, end) - offsetBytes };
    }

    /// <summary>What one cluster (or subcluster, with extended L2) holds at a guest offset.</summary>
    private Qcow2Extent Classify(byte[] table, long offsetBytes, out long granuleEnd)
    {
        long index = (offsetBytes >> _clusterBits) & (L2Entries - 1);
        long inCluster = offsetBytes & (ClusterSize - 1);
        long clusterStart = offsetBytes - inCluster;
        (ulong entry, ulong bitmap) = ReadL2Entry(table, index);
        granuleEnd = clusterStart + ClusterSize;
        if ((entry & Qcow2L2Entry.Compressed) != 0)
        {
            if (HasExternalDataFile)
            {
                throw new ImageCorruptException($"cluster at guest offset {clusterStart} is compressed, which an image with an external data file cannot have", "L2 table", clusterStart, HostFile.Path);
            }

            return new Qcow2Extent(Qcow2ExtentKind.Compressed, 0, -1, entry);
        }

        long host = (long)(entry & Qcow2L2Entry.OffsetMask);
        bool hasHost = HasHostCluster(entry);
        if ((host & (ClusterSize - 1)) != 0)
        {
            throw new ImageCorruptException($"cluster at guest offset {clusterStart} maps to unaligned host offset {host}", "L2 table", clusterStart, HostFile.Path);
        }

        if (ExtendedL2)
        {
            long sub = inCluster / SubclusterSize;
            granuleEnd = clusterStart + ((sub + 1) * SubclusterSize);
            if ((bitmap & (1UL << (int)sub)) != 0)
            {
                if (!hasHost)
                {
                    throw new ImageCorruptException($"subcluster at guest offset {offsetBytes} is allocated without a host cluster", "L2 table", clusterStart, HostFile.Path);
                }

                return new Qcow2Extent(Qcow2ExtentKind.Data, 0, host + inCluster, 0);
            }

            long where = hasHost ? host + inCluster : -1;
            return (bitmap & (1UL << (int)(sub + Qcow2L2Entry.SubclusterZeroShift))) != 0
                ? new Qcow2Extent(Qcow2ExtentKind.Zero, 0, where, 0)
                : new Qcow2Extent(Qcow2ExtentKind.Unallocated, 0, where, 0);
        }

        if ((entry & Qcow2L2Entry.Zero) != 0 && Header.Version >= 3)
        {
            // QEMU: a zero cluster with host offset 0 is "zero, plain" even with an external data file.
            return new Qcow2Extent(Qcow2ExtentKind.Zero, 0, host != 0 ? host + inCluster : -1, 0);
        }

        return hasHost
            ? new Qcow2Extent(Qcow2ExtentKind.Data, 0, host + inCluster, 0)
            : new Qcow2Extent(Qcow2ExtentKind.Unallocated, 0, -1, 0);
    }

    /// <summary>The L2 table for an L1 index, made writable: allocated when missing, copied when shared
    /// with a snapshot (L1 entry without the COPIED flag and refcount above one).</summary>
    private async ValueTask<(byte[] Table, long Offset)> GetL2ForWriteAsync(long l1Index, CancellationToken cancellationToken)
    {
        if (l1Index >= L1.Length)
        {
            throw new ImageCorruptException($"L1 index {l1Index} is beyond the L1 table ({L1.Length} entries)", "L1 table", Header.L1TableOffset, HostFile.Path);
        }

        ulong l1Entry = (ulong)L1[l1Index];
        long l2Offset = (long)(l1Entry & Qcow2L2Entry.OffsetMask);
        if (l2Offset == 0)
        {
            long fresh = await Refcounts.AllocateAsync(1, cancellationToken).ConfigureAwait(false);
            byte[] table = new byte[ClusterSize];
            await HostFile.WriteAsync(fresh, table, cancellationToken).ConfigureAwait(false);
            L2Cache.Put(fresh, table);
            await SetL1EntryAsync(l1Index, (ulong)fresh | Qcow2L2Entry.Copied, cancellationToken).ConfigureAwait(false);
            return (table, fresh);
        }

        byte[] current = await GetL2Async(l1Index, cancellationToken).ConfigureAwait(false) ?? throw new InvalidOperationException();
        if ((l1Entry & Qcow2L2Entry.Copied) != 0)
        {
            return (current, l2Offset);
        }

        ulong refcount = await Refcounts.GetAsync(l2Offset >> _clusterBits, cancellationToken).ConfigureAwait(false);
        if (refcount == 1)
        {
            await SetL1EntryAsync(l1Index, l1Entry | Qcow2L2Entry.Copied, cancellationToken).ConfigureAwait(false);
            return (current, l2Offset);
        }

        long copyOffset = await Refcounts.AllocateAsync(1, cancellationToken).ConfigureAwait(false);
        byte[] copy = (byte[])current.Clone();
        await HostFile.WriteAsync(copyOffset, copy, cancellationToken).ConfigureAwait(false);
        L2Cache.Put(copyOffset, copy);
        await SetL1EntryAsync(l1Index, (ulong)copyOffset | Qcow2L2Entry.Copied, cancellationToken).ConfigureAwait(false);
        await Refcounts.AddAsync(l2Offset >> _clusterBits, -1, cancellationToken).ConfigureAwait(false);
        return (copy, copyOffset);
    }

    public async ValueTask SetL1EntryAsync(long l1Index, ulong value, CancellationToken cancellationToken)
    {
        L1[l1Index] = (long)value;
        byte[] raw = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(raw, value);
        await HostFile.WriteAsync(Header.L1TableOffset + (l1Index * 8), raw, cancellationToken).ConfigureAwait(false);
    }

    private ValueTask WriteL2EntriesAsync(byte[] table, long l2Offset, long firstIndex, long count, CancellationToken cancellationToken)
    {
        int start = (int)(firstIndex * _l2EntryBytes);
        return HostFile.WriteAsync(l2Offset + start, table.AsMemory(start, (int)(count * _l2EntryBytes)), cancellationToken);
    }
}

using System.Buffers.Binary;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// The two-level refcount structure (docs/interop/qcow2.txt, "Host cluster management") and cluster
/// allocation on top of it. Every change is written through at once, refcount before the mapping
/// that uses it, so a crash can leak clusters but never lose data (QEMU's ordering).
/// Not thread-safe: the image serializes callers with its metadata lock.
/// </summary>
internal sealed class Qcow2Refcounts
{
    private const long EntryOffsetMask = unchecked((long)0xFFFF_FFFF_FFFF_FE00UL);

    private readonly IHostFile _file;
    private readonly Qcow2TableCache _blocks;
    private readonly int _clusterBits;
    private readonly int _refcountOrder;
    private readonly Func<long, int, CancellationToken, ValueTask> _tableMoved;
    private long[] _table;
    private long _freeHint;

    public Qcow2Refcounts(IHostFile file, int clusterBits, int refcountOrder, long tableOffset, long[] table, Func<long, int, CancellationToken, ValueTask> tableMoved)
    {
        _file = file;
        _clusterBits = clusterBits;
        _refcountOrder = refcountOrder;
        TableOffset = tableOffset;
        _table = table;
        _tableMoved = tableMoved;
        _blocks = new Qcow2TableCache(file, 1 << clusterBits, Qcow2Limits.RefcountCacheBytes);
    }

    public long TableOffset { get; private set; }

    public IReadOnlyList<long> Table => _table;

    public long ClusterSize => 1L << _clusterBits;

    public int RefcountBits => 1 << _refcountOrder;

    /// <summary>refcount_block_entries = cluster_size * 8 / refcount_bits.</summary>
    public long EntriesPerBlock => ClusterSize * 8 / RefcountBits;

    public ulong MaxRefcount => RefcountBits == 64 ? ulong.MaxValue : (1UL << RefcountBits) - 1;

    public static ValueTask<long[]> ReadTableAsync(IHostFile file, long offset, int clusters, int clusterBits, CancellationToken cancellationToken) =>
        OffsetTable.ReadAsync(file, offset, (clusters << clusterBits) / OffsetTable.EntryBytes, TableByteOrder.BigEndian, cancellationToken);

    public void DropCache() => _blocks.Clear();

    /// <summary>Switches to a rebuilt refcount structure (check -r all).</summary>
    public void Replace(long tableOffset, long[] table)
    {
        TableOffset = tableOffset;
        _table = table;
        _blocks.Clear();
        _freeHint = 0;
    }

    public void ResetFreeHint() => _freeHint = 0;

    public async ValueTask<ulong> GetAsync(long clusterIndex, CancellationToken cancellationToken)
    {
        if (TryGetCached(clusterIndex, out ulong refcount, out long blockOffset))
        {
            return refcount;
        }

        byte[] block = await _blocks.GetAsync(blockOffset, cancellationToken).ConfigureAwait(false);
        return ReadEntry(block, clusterIndex % EntriesPerBlock, _refcountOrder);
    }

    /// <summary>A cluster's refcount without I/O: true when known (no refcount block, or its block is cached);
    /// false with the block's offset when that block must be read first.</summary>
    public bool TryGetCached(long clusterIndex, out ulong refcount, out long blockOffset)
    {
        refcount = 0;
        long tableIndex = clusterIndex / EntriesPerBlock;
        blockOffset = tableIndex < _table.Length ? _table[tableIndex] & EntryOffsetMask : 0;
        if (blockOffset == 0)
        {
            return true;
        }

        CheckBlockOffset(blockOffset, tableIndex);
        if (!_blocks.TryGet(blockOffset, out byte[]? block))
        {
            return false;
        }

        refcount = ReadEntry(block, clusterIndex % EntriesPerBlock, _refcountOrder);
        return true;
    }

    /// <summary>How many of the clusters below <paramref name="endCluster"/> are in use (refcount above zero),
    /// counting no further than <paramref name="stopAt"/>.</summary>
    public async ValueTask<long> CountInUseAsync(long endCluster, long stopAt, CancellationToken cancellationToken)
    {
        long count = 0;
        for (long tableIndex = 0; tableIndex < _table.Length && tableIndex * EntriesPerBlock < endCluster && count < stopAt; tableIndex++)
        {
            long blockOffset = _table[tableIndex] & EntryOffsetMask;
            if (blockOffset == 0)
            {
                continue;
            }

            CheckBlockOffset(blockOffset, tableIndex);
            byte[] block = await _blocks.GetAsync(blockOffset, cancellationToken).ConfigureAwait(false);
            long entries = Math.Min(EntriesPerBlock, endCluster - (tableIndex * EntriesPerBlock));
            for (long i = 0; i < entries && count < stopAt; i++)
            {
                if (ReadEntry(block, i, _refcountOrder) != 0)
                {
                    count++;
                }
            }
        }

        return count;
    }

    /// <summary>The refcount block at a host offset the caller has validated, through the cache.</summary>
    public ValueTask<byte[]> GetBlockAsync(long blockOffset, CancellationToken cancellationToken) =>
        _blocks.GetAsync(blockOffset, cancellationToken);

    /// <summary>Sets the refcount of <paramref name="count"/> clusters from <paramref name="firstCluster"/>
    /// to <paramref name="value"/>, allocating refcount blocks as needed; one write per block touched.</summary>
    public async ValueTask SetRangeAsync(long firstCluster, long count, ulong value, CancellationToken cancellationToken)
    {
        long cluster = firstCluster;
        long end = firstCluster + count;
        while (cluster < end)
        {
            long tableIndex = cluster / EntriesPerBlock;
            long blockOffset = await EnsureBlockAsync(tableIndex, cancellationToken).ConfigureAwait(false);
            byte[] block = await _blocks.GetAsync(blockOffset, cancellationToken).ConfigureAwait(false);
            long first = cluster % EntriesPerBlock;
            long n = Math.Min(end - cluster, EntriesPerBlock - first);
            for (long i = 0; i < n; i++)
            {
                WriteEntry(block, first + i, _refcountOrder, value);
            }

            (int byteStart, int byteEnd) = ByteSpan(first, n);
            await _file.WriteAsync(blockOffset + byteStart, block.AsMemory(byteStart, byteEnd - byteStart), cancellationToken).ConfigureAwait(false);
            cluster += n;
        }
    }

    /// <summary>Adds <paramref name="delta"/> to one cluster's refcount; returns the new value.</summary>
    public async ValueTask<ulong> AddAsync(long clusterIndex, long delta, CancellationToken cancellationToken)
    {
        ulong current = await GetAsync(clusterIndex, cancellationToken).ConfigureAwait(false);
        long next = (long)current + delta;
        if (next < 0)
        {
            throw new ImageCorruptException($"refcount of cluster {clusterIndex} would drop below zero", "refcount block", clusterIndex << _clusterBits, _file.Path);
        }

        if ((ulong)next > MaxRefcount)
        {
            throw new UnsupportedFeatureException($"refcount of cluster {clusterIndex} would overflow {RefcountBits} bits", _file.Path);
        }

        await SetRangeAsync(clusterIndex, 1, (ulong)next, cancellationToken).ConfigureAwait(false);
        if (next == 0 && clusterIndex < _freeHint)
        {
            _freeHint = clusterIndex;
        }

        return (ulong)next;
    }

    /// <summary>Allocates <paramref name="count"/> contiguous free clusters with refcount 1; returns the host offset.</summary>
    public async ValueTask<long> AllocateAsync(long count, CancellationToken cancellationToken)
    {
        long first = await FindFreeRunAsync(count, cancellationToken).ConfigureAwait(false);

        // Refcount blocks for the new clusters are themselves allocated from the free hint, which
        // now lies past the run, so they cannot land inside it.
        await SetRangeAsync(first, count, 1, cancellationToken).ConfigureAwait(false);
        return first << _clusterBits;
    }

    private async ValueTask<long> FindFreeRunAsync(long count, CancellationToken cancellationToken)
    {
        long candidate = _freeHint;
        while (true)
        {
            long run = 0;
            while (run < count)
            {
                if (await GetAsync(candidate + run, cancellationToken).ConfigureAwait(false) != 0)
                {
                    break;
                }

                run++;
            }

            if (run == count)
            {
                if ((candidate + count) << _clusterBits > Qcow2Limits.MaxHostOffset)
                {
                    throw new UnsupportedFeatureException("the image file would grow beyond the largest offset qcow2 can address", _file.Path);
                }

                _freeHint = candidate + count;
                return candidate;
            }

            candidate += run + 1;
        }
    }

    private async ValueTask<long> EnsureBlockAsync(long tableIndex, CancellationToken cancellationToken)
    {
        if (tableIndex >= _table.Length)
        {
            await GrowTableAsync(tableIndex + 1, cancellationToken).ConfigureAwait(false);
        }

        long blockOffset = _table[tableIndex] & EntryOffsetMask;
        if (blockOffset != 0)
        {
            CheckBlockOffset(blockOffset, tableIndex);
            return blockOffset;
        }

        long cluster = await FindFreeRunAsync(1, cancellationToken).ConfigureAwait(false);
        blockOffset = cluster << _clusterBits;
        byte[] block = new byte[ClusterSize];
        await _file.WriteAsync(blockOffset, block, cancellationToken).ConfigureAwait(false);
        _blocks.Put(blockOffset, block);
        _table[tableIndex] = blockOffset;
        await WriteTableEntryAsync(tableIndex, cancellationToken).ConfigureAwait(false);

        // The new block needs a refcount too: usually it describes itself (same table index).
        await SetRangeAsync(cluster, 1, 1, cancellationToken).ConfigureAwait(false);
        return blockOffset;
    }

    private async ValueTask WriteTableEntryAsync(long tableIndex, CancellationToken cancellationToken)
    {
        byte[] entry = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(entry, _table[tableIndex]);
        await _file.WriteAsync(TableOffset + (tableIndex * 8), entry, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Moves the refcount table to a larger place at the end of the allocated space, as QEMU does
    /// when an image outgrows it; the new table is sized to cover itself and the blocks it needs.</summary>
    private async ValueTask GrowTableAsync(long minEntries, CancellationToken cancellationToken)
    {
        long entriesPerCluster = ClusterSize / 8;
        long newEntries = Math.Max(minEntries, _table.Length * 2L);
        while (true)
        {
            long clusters = (newEntries + entriesPerCluster - 1) / entriesPerCluster;
            if (clusters * ClusterSize > Qcow2Limits.MaxRefcountTableBytes)
            {
                throw new UnsupportedFeatureException("the refcount table would exceed its 8 MiB limit", _file.Path);
            }

            long start = await FindFreeRunAsync(clusters, cancellationToken).ConfigureAwait(false);

            // Room for the table itself and a few new blocks past it.
            if ((start + clusters + 8) / EntriesPerBlock >= newEntries)
            {
                _freeHint = start;
                newEntries *= 2;
                continue;
            }

            long[] table = new long[clusters * entriesPerCluster];
            Array.Copy(_table, table, _table.Length);
            byte[] raw = OffsetTable.Serialize(table, TableByteOrder.BigEndian, clusters * ClusterSize);

            await _file.WriteAsync(start << _clusterBits, raw, cancellationToken).ConfigureAwait(false);
            long oldOffset = TableOffset;
            long oldClusters = ((_table.Length * 8L) + ClusterSize - 1) / ClusterSize;
            _table = table;
            TableOffset = start << _clusterBits;
            await _tableMoved(TableOffset, (int)clusters, cancellationToken).ConfigureAwait(false);
            await SetRangeAsync(start, clusters, 1, cancellationToken).ConfigureAwait(false);
            await SetRangeAsync(oldOffset >> _clusterBits, oldClusters, 0, cancellationToken).ConfigureAwait(false);
            _freeHint = Math.Min(_freeHint, oldOffset >> _clusterBits);
            return;
        }
    }

    private void CheckBlockOffset(long blockOffset, long tableIndex)
    {
        if ((blockOffset & (ClusterSize - 1)) != 0 || blockOffset > Qcow2Limits.MaxHostOffset)
        {
            throw new ImageCorruptException($"refcount block {tableIndex} has an invalid offset {blockOffset}", "refcount table", TableOffset + (tableIndex * 8), _file.Path);
        }
    }

    private (int Start, int End) ByteSpan(long firstEntry, long count)
    {
        long startBit = firstEntry << _refcountOrder;
        long endBit = (firstEntry + count) << _refcountOrder;
        return ((int)(startBit / 8), (int)((endBit + 7) / 8));
    }

    /// <summary>Reads entry <paramref name="index"/> of a refcount block whose entries are 2^order bits:
    /// big-endian for whole bytes; for narrower widths bit 0 of the entry is the byte's least significant bit.</summary>
    public static ulong ReadEntry(ReadOnlySpan<byte> block, long index, int order)
    {
        switch (order)
        {
            case 6: return BinaryPrimitives.ReadUInt64BigEndian(block[(int)(index * 8)..]);
            case 5: return BinaryPrimitives.ReadUInt32BigEndian(block[(int)(index * 4)..]);
            case 4: return BinaryPrimitives.ReadUInt16BigEndian(block[(int)(index * 2)..]);
            case 3: return block[(int)index];
            default:
                int bits = 1 << order;
                long bit = index * bits;
                return (ulong)((block[(int)(bit / 8)] >> (int)(bit % 8)) & ((1 << bits) - 1));
        }
    }

    public static void WriteEntry(Span<byte> block, long index, int order, ulong value)
    {
        switch (order)
        {
            case 6: BinaryPrimitives.WriteUInt64BigEndian(block[(int)(index * 8)..], value); break;
            case 5: BinaryPrimitives.WriteUInt32BigEndian(block[(int)(index * 4)..], (uint)value); break;
            case 4: BinaryPrimitives.WriteUInt16BigEndian(block[(int)(index * 2)..], (ushort)value); break;
            case 3: block[(int)index] = (byte)value; break;
            default:
                int bits = 1 << order;
                long bit = index * bits;
                int mask = ((1 << bits) - 1) << (int)(bit % 8);
                ref byte b = ref block[(int)(bit / 8)];
                b = (byte)((b & ~mask) | (((int)value << (int)(bit % 8)) & mask));
                break;
        }
    }
}

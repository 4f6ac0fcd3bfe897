namespace ImgTool.Formats.Qed;

/// <summary>
/// L2 tables kept in memory by host offset (QEMU's write-through L2TableCache): the owner writes every change to the
/// file as it makes it, so an entry can be dropped at any time. Full: the least recently used quarter goes. Not
/// thread-safe: callers hold the image's metadata lock.
/// </summary>
internal sealed class QedL2Cache(long capacityTables)
{
    private readonly Dictionary<long, Entry> _tables = [];
    private readonly int _capacity = (int)Math.Clamp(capacityTables, 4, 1 << 16);
    private long _clock;

    /// <summary>The cached table at this offset if it holds at least <paramref name="minEntries"/> entries.</summary>
    public long[]? Find(long offsetBytes, int minEntries)
    {
        if (_tables.TryGetValue(offsetBytes, out Entry? entry) && entry.Table.Length >= minEntries)
        {
            entry.LastUse = ++_clock;
            return entry.Table;
        }

        return null;
    }

    public void Put(long offsetBytes, long[] table)
    {
        if (_tables.Count >= _capacity && !_tables.ContainsKey(offsetBytes))
        {
            foreach (long victim in _tables.OrderBy(kv => kv.Value.LastUse).Take(Math.Max(1, _capacity / 4)).Select(kv => kv.Key).ToList())
            {
                _tables.Remove(victim);
            }
        }

        _tables[offsetBytes] = new Entry(table) { LastUse = ++_clock };
    }

    public void Clear() => _tables.Clear();

    private sealed class Entry(long[] table)
    {
        public long[] Table { get; } = table;

        public long LastUse { get; set; }
    }
}

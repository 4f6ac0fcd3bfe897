using System.Diagnostics.CodeAnalysis;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// Cluster-sized metadata tables (L2 tables, refcount blocks) kept in memory by host offset, as
/// QEMU's Qcow2Cache. Updates are written through by the owner, so an entry can be dropped at any
/// time; the least recently used quarter goes when the cache is full. Not thread-safe: callers hold
/// the image's metadata lock.
/// </summary>
internal sealed class Qcow2TableCache(IHostFile file, int tableBytes, long capacityBytes)
{
    private readonly Dictionary<long, Entry> _tables = [];
    private readonly int _capacity = (int)Math.Max(16, capacityBytes / tableBytes);
    private long _clock;

    public int TableBytes { get; } = tableBytes;

    public async ValueTask<byte[]> GetAsync(long offsetBytes, CancellationToken cancellationToken)
    {
        if (TryGet(offsetBytes, out byte[]? cached))
        {
            return cached;
        }

        byte[] data = new byte[TableBytes];
        await file.ReadZeroFilledAsync(offsetBytes, data, cancellationToken).ConfigureAwait(false);
        Add(offsetBytes, data);
        return data;
    }

    /// <summary>The table at an offset when it is cached, without I/O.</summary>
    public bool TryGet(long offsetBytes, [NotNullWhen(true)] out byte[]? data)
    {
        if (_tables.TryGetValue(offsetBytes, out Entry? entry))
        {
            entry.LastUse = ++_clock;
            data = entry.Data;
            return true;
        }

        data = null;
        return false;
    }

    /// <summary>Installs a table that was just written (a new zeroed table or a copy).</summary>
    public void Put(long offsetBytes, byte[] data) => Add(offsetBytes, data);

    public void Remove(long offsetBytes) => _tables.Remove(offsetBytes);

    public void Clear() => _tables.Clear();

    private void Add(long offsetBytes, byte[] data)
    {
        if (_tables.Count >= _capacity && !_tables.ContainsKey(offsetBytes))
        {
            foreach (long victim in _tables.OrderBy(kv => kv.Value.LastUse).Take(Math.Max(1, _capacity / 4)).Select(kv => kv.Key).ToList())
            {
                _tables.Remove(victim);
            }
        }

        _tables[offsetBytes] = new Entry(data) { LastUse = ++_clock };
    }

    private sealed class Entry(byte[] data)
    {
        public byte[] Data { get; } = data;

        public long LastUse { get; set; }
    }
}

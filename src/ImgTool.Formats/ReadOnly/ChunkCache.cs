namespace ImgTool.Formats.ReadOnly;

/// <summary>
/// The last few decompressed chunks (cloop blocks, DMG chunks, qcow compressed clusters), so that the many small reads
/// convert and compare make inside one chunk decompress it once. Bounded by bytes, not entries: a DMG chunk may be
/// 64 MiB. Safe for concurrent readers; two readers that miss at once may both decompress (harmless).
/// </summary>
internal sealed class ChunkCache(long budgetBytes)
{
    private readonly object _gate = new();
    private readonly LinkedList<(long Key, byte[] Data)> _entries = new();
    private long _cachedBytes;

    public async ValueTask<byte[]> GetAsync(long key, Func<long, CancellationToken, ValueTask<byte[]>> load, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            for (LinkedListNode<(long Key, byte[] Data)>? node = _entries.First; node is not null; node = node.Next)
            {
                if (node.Value.Key == key)
                {
                    _entries.Remove(node);
                    _entries.AddFirst(node);
                    return node.Value.Data;
                }
            }
        }

        byte[] data = await load(key, cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            _entries.AddFirst((key, data));
            _cachedBytes += data.Length;
            while (_cachedBytes > budgetBytes && _entries.Count > 1)
            {
                _cachedBytes -= _entries.Last!.Value.Data.Length;
                _entries.RemoveLast();
            }
        }

        return data;
    }
}

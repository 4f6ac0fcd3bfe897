using ImgTool.Block.Host;

namespace ImgTool.Formats.Vhd;

/// <summary>
/// The sector bitmaps that precede each data block (spec: "Block Allocation Table and Data Blocks"): one bit per sector,
/// most significant bit first, set when the sector holds data. Blocks whose bitmap is all ones (every block qemu
/// writes) are remembered as "full" and never read again; other bitmaps live in a small bounded cache.
/// </summary>
internal sealed class VhdBitmaps(IHostFile file, int bitmapBytes, int blockSectors, long blockCount)
{
    private const byte Unknown = 0;
    private const byte Full = 1;
    private const byte Partial = 2;

    private readonly byte[] _state = new byte[blockCount];
    private readonly Dictionary<long, byte[]> _cache = [];
    private readonly Lock _cacheLock = new();

    public int BitmapBytes { get; } = bitmapBytes;

    public int BlockSectors { get; } = blockSectors;

    /// <summary>Marks a block full (dynamic disks: qemu's way, every bit set on allocation).</summary>
    public void MarkFull(long block)
    {
        lock (_cacheLock)
        {
            _state[block] = Full;
            _cache.Remove(block);
        }
    }

    /// <summary>Records the bitmap of a block, as just written.</summary>
    public void Store(long block, byte[] bitmap)
    {
        lock (_cacheLock)
        {
            bool full = IsFull(bitmap);
            _state[block] = full ? Full : Partial;
            if (full)
            {
                _cache.Remove(block);
            }
            else
            {
                Remember(block, bitmap);
            }
        }
    }

    /// <summary>The bitmap of a block, or null when every sector of it holds data.</summary>
    public async ValueTask<byte[]?> GetAsync(long block, long bitmapOffsetBytes, CancellationToken cancellationToken)
    {
        lock (_cacheLock)
        {
            if (_state[block] == Full)
            {
                return null;
            }

            if (_cache.TryGetValue(block, out byte[]? cached))
            {
                return cached;
            }
        }

        byte[] bitmap = new byte[BitmapBytes];
        await file.ReadZeroFilledAsync(bitmapOffsetBytes, bitmap, cancellationToken).ConfigureAwait(false);
        lock (_cacheLock)
        {
            if (_cache.TryGetValue(block, out byte[]? raced))
            {
                return raced; // a writer stored a newer copy meanwhile
            }

            if (_state[block] == Full || IsFull(bitmap))
            {
                _state[block] = Full;
                return null;
            }

            _state[block] = Partial;
            Remember(block, bitmap);
            return bitmap;
        }
    }

    public static bool IsSet(ReadOnlySpan<byte> bitmap, long sector) => (bitmap[(int)(sector >> 3)] & (0x80 >> (int)(sector & 7))) != 0;

    /// <summary>How many sectors from <paramref name="sector"/> share its bit, up to <paramref name="maxSectors"/>.</summary>
    public static long RunLength(ReadOnlySpan<byte> bitmap, long sector, long maxSectors, out bool set)
    {
        set = IsSet(bitmap, sector);
        long run = 1;
        while (run < maxSectors && IsSet(bitmap, sector + run) == set)
        {
            run++;
        }

        return run;
    }

    public static void SetRange(Span<byte> bitmap, long firstSector, long count)
    {
        for (long s = firstSector; s < firstSector + count; s++)
        {
            bitmap[(int)(s >> 3)] |= (byte)(0x80 >> (int)(s & 7));
        }
    }

    public static bool AllSet(ReadOnlySpan<byte> bitmap, long firstSector, long count)
    {
        for (long s = firstSector; s < firstSector + count; s++)
        {
            if (!IsSet(bitmap, s))
            {
                return false;
            }
        }

        return true;
    }

    private bool IsFull(ReadOnlySpan<byte> bitmap)
    {
        int wholeBytes = BlockSectors / 8;
        if (bitmap[..wholeBytes].IndexOfAnyExcept((byte)0xff) >= 0)
        {
            return false;
        }

        return AllSet(bitmap, wholeBytes * 8L, BlockSectors % 8);
    }

    private void Remember(long block, byte[] bitmap)
    {
        if (_cache.Count >= VhdLimits.BitmapCacheEntries && !_cache.ContainsKey(block))
        {
            _cache.Clear(); // bounded memory; bitmaps are read again on demand
        }

        _cache[block] = bitmap;
    }
}

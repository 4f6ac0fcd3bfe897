namespace ImgTool.Operations.Measure;

/// <summary>
/// The pages of a <see cref="SimulatedHostFile"/>: pages with bytes in a dictionary, pages of fill only as one bit each
/// in a bitmap kept in 1 GiB pieces, so the guest data of a fully allocated disk costs 32 MiB of memory per TiB
/// whatever its layout. A lookup answers as a dictionary would, with a null value for a fill page.
/// </summary>
internal sealed class SimulatedPageTable
{
    private const int PagesPerPiece = 1 << 18; // 1 GiB of 4 KiB pages
    private const int WordsPerPiece = PagesPerPiece / 64;

    private readonly Dictionary<long, byte[]> _bytes = [];
    private readonly Dictionary<long, ulong[]> _fill = [];
    private long _fillCount;

    public long Count => _bytes.Count + _fillCount;

    public bool ContainsKey(long index) => _bytes.ContainsKey(index) || IsFill(index);

    /// <summary>True when the page exists; <paramref name="page"/> is then its bytes, or null for a fill page.</summary>
    public bool TryGetValue(long index, out byte[]? page)
    {
        if (_bytes.TryGetValue(index, out byte[]? bytes))
        {
            page = bytes;
            return true;
        }

        page = null;
        return IsFill(index);
    }

    /// <summary>Stores the page's bytes, or marks it as fill when <paramref name="page"/> is null.</summary>
    public void Set(long index, byte[]? page)
    {
        if (page is null)
        {
            _bytes.Remove(index);
            SetFill(index, true);
        }
        else
        {
            SetFill(index, false);
            _bytes[index] = page;
        }
    }

    public void Remove(long index)
    {
        _bytes.Remove(index);
        SetFill(index, false);
    }

    private bool IsFill(long index) =>
        _fill.TryGetValue(index / PagesPerPiece, out ulong[]? piece) && (piece[(int)(index % PagesPerPiece) / 64] & Bit(index)) != 0;

    private void SetFill(long index, bool fill)
    {
        long pieceIndex = index / PagesPerPiece;
        if (!_fill.TryGetValue(pieceIndex, out ulong[]? piece))
        {
            if (!fill)
            {
                return;
            }

            piece = new ulong[WordsPerPiece];
            _fill[pieceIndex] = piece;
        }

        ref ulong word = ref piece[(int)(index % PagesPerPiece) / 64];
        bool was = (word & Bit(index)) != 0;
        if (was != fill)
        {
            word ^= Bit(index);
            _fillCount += fill ? 1 : -1;
        }
    }

    private static ulong Bit(long index) => 1UL << (int)(index % 64);
}

using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Operations.Measure;

/// <summary>
/// The in-memory host file a simulated convert writes into (<see cref="ConvertSimulation"/>): sparse 4 KiB pages, where a
/// page holding only <see cref="FillByte"/> (the stand-in for guest data) is kept as a mark instead of bytes, so
/// the data of a large disk costs a bit per page (<see cref="SimulatedPageTable"/>) while metadata is kept exactly. Past a budget of
/// real bytes, further pages are only counted: a later read of one is refused, so nothing is ever measured wrong.
/// </summary>
internal sealed class SimulatedHostFile(string path, SimulationBudget budget) : IHostFile
{
    public const int PageSize = 4096;

    /// <summary>What guest data reads as in a simulation (any nonzero value would do).</summary>
    public const byte FillByte = 0xA5;

    private static readonly byte[] Dropped = new byte[1];

    // A null value is a page of FillByte only.
    private readonly SimulatedPageTable _pages = new();
    private readonly Lock _lock = new();
    private long _length;

    public string Path { get; } = path;

    public bool IsReadOnly => false;

    public long Length
    {
        get
        {
            lock (_lock)
            {
                return _length;
            }
        }
    }

    public long AllocatedBytes
    {
        get
        {
            lock (_lock)
            {
                return (long)_pages.Count * PageSize;
            }
        }
    }

    public int Alignment => 1;

    public ValueTask<int> ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            int n = (int)Math.Clamp(_length - offsetBytes, 0, buffer.Length);
            Span<byte> destination = buffer.Span[..n];
            for (int done = 0; done < n;)
            {
                long position = offsetBytes + done;
                int inPage = (int)(position % PageSize);
                int chunk = Math.Min(PageSize - inPage, n - done);
                Span<byte> part = destination.Slice(done, chunk);
                if (!_pages.TryGetValue(position / PageSize, out byte[]? page))
                {
                    part.Clear();
                }
                else if (page is null)
                {
                    part.Fill(FillByte);
                }
                else if (ReferenceEquals(page, Dropped))
                {
                    throw new UnsupportedFeatureException($"measure: the simulated image needs more than {budget.MaxBytes >> 20} MiB of metadata in memory");
                }
                else
                {
                    page.AsSpan(inPage, chunk).CopyTo(part);
                }

                done += chunk;
            }

            return ValueTask.FromResult(n);
        }
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            ReadOnlySpan<byte> source = buffer.Span;
            Span<byte> scratch = stackalloc byte[PageSize];
            for (int done = 0; done < source.Length;)
            {
                long position = offsetBytes + done;
                long index = position / PageSize;
                int inPage = (int)(position % PageSize);
                int chunk = Math.Min(PageSize - inPage, source.Length - done);
                ReadOnlySpan<byte> part = source.Slice(done, chunk);
                if (chunk == PageSize)
                {
                    Store(index, part);
                }
                else
                {
                    // A partial page: merge with what the page held, then store the whole page again.
                    LoadPage(index, scratch);
                    part.CopyTo(scratch[inPage..]);
                    Store(index, scratch);
                }

                done += chunk;
            }

            _length = Math.Max(_length, offsetBytes + source.Length);
        }

        return ValueTask.CompletedTask;
    }

    public void SetLength(long lengthBytes)
    {
        lock (_lock)
        {
            if (lengthBytes < _length)
            {
                ClearRange(lengthBytes, _length - lengthBytes);
            }

            _length = lengthBytes;
        }
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public HostExtent GetExtent(long offsetBytes, long maxLengthBytes)
    {
        lock (_lock)
        {
            bool isData = offsetBytes < _length && _pages.ContainsKey(offsetBytes / PageSize);
            long reach = 0;
            long position = offsetBytes;
            while (reach < maxLengthBytes && position < _length && _pages.ContainsKey(position / PageSize) == isData)
            {
                long step = Math.Min(PageSize - (position % PageSize), _length - position);
                reach += step;
                position += step;
            }

            if (!isData && position >= _length)
            {
                reach = maxLengthBytes; // past the end of the file all is hole
            }

            return new HostExtent(isData, Math.Max(1, Math.Min(reach, maxLengthBytes)));
        }
    }

    public void PunchHole(long offsetBytes, long lengthBytes)
    {
        lock (_lock)
        {
            ClearRange(offsetBytes, Math.Min(lengthBytes, _length - offsetBytes));
        }
    }

    public void ZeroRange(long offsetBytes, long lengthBytes)
    {
        lock (_lock)
        {
            ClearRange(offsetBytes, lengthBytes);
            _length = Math.Max(_length, offsetBytes + lengthBytes);
        }
    }

    public void Preallocate(long offsetBytes, long lengthBytes, bool writeZeros)
    {
        lock (_lock)
        {
            _length = Math.Max(_length, offsetBytes + lengthBytes);
        }
    }

    public void Dispose()
    {
    }

    private void LoadPage(long index, Span<byte> page)
    {
        if (!_pages.TryGetValue(index, out byte[]? stored))
        {
            page.Clear();
        }
        else if (stored is null)
        {
            page.Fill(FillByte);
        }
        else if (ReferenceEquals(stored, Dropped))
        {
            throw new UnsupportedFeatureException($"measure: the simulated image needs more than {budget.MaxBytes >> 20} MiB of metadata in memory");
        }
        else
        {
            stored.CopyTo(page);
        }
    }

    private void Store(long index, ReadOnlySpan<byte> page)
    {
        if (_pages.TryGetValue(index, out byte[]? old) && old is not null && !ReferenceEquals(old, Dropped))
        {
            if (page.IndexOfAnyExcept(FillByte) >= 0)
            {
                page.CopyTo(old);
                return;
            }

            budget.Release(PageSize);
        }

        if (page.IndexOfAnyExcept(FillByte) < 0)
        {
            _pages.Set(index, null);
        }
        else
        {
            _pages.Set(index, budget.TryTake(PageSize) ? page.ToArray() : Dropped);
        }
    }

    // Whole pages in the range are dropped, the partial ones at the edges zeroed.
    private void ClearRange(long offsetBytes, long lengthBytes)
    {
        Span<byte> scratch = stackalloc byte[PageSize];
        long end = offsetBytes + lengthBytes;
        for (long position = offsetBytes; position < end;)
        {
            long index = position / PageSize;
            int inPage = (int)(position % PageSize);
            int chunk = (int)Math.Min(PageSize - inPage, end - position);
            if (_pages.TryGetValue(index, out byte[]? old))
            {
                if (chunk == PageSize)
                {
                    if (old is not null && !ReferenceEquals(old, Dropped))
                    {
                        budget.Release(PageSize);
                    }

                    _pages.Remove(index);
                }
                else
                {
                    LoadPage(index, scratch);
                    scratch.Slice(inPage, chunk).Clear();
                    Store(index, scratch);
                }
            }

            position += chunk;
        }
    }
}

/// <summary>How many bytes of real (non-fill) pages the files of one simulation may keep in memory together.</summary>
internal sealed class SimulationBudget(long maxBytes)
{
    private long _used;

    public long MaxBytes { get; } = maxBytes;

    public bool TryTake(long bytes)
    {
        if (Interlocked.Add(ref _used, bytes) <= MaxBytes)
        {
            return true;
        }

        Interlocked.Add(ref _used, -bytes);
        return false;
    }

    public void Release(long bytes) => Interlocked.Add(ref _used, -bytes);
}

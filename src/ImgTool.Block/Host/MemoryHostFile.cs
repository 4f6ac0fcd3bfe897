using ImgTool.Block.Errors;

namespace ImgTool.Block.Host;

/// <summary>
/// A sparse host file in memory, for tests and for the copy-on-write overlay's scratch space.
/// Storage is kept in 4 KiB pages that exist only once written, so holes behave like a sparse file's.
/// </summary>
public sealed class MemoryHostFile(string path = "memory") : IHostFile
{
    public const int PageSize = 4096;

    private readonly Dictionary<long, byte[]> _pages = [];
    private readonly Lock _lock = new();
    private long _length;

    public string Path { get; } = path;

    public bool IsReadOnly { get; init; }

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

    /// <summary>How many flushes were asked for (tests check that writers flush).</summary>
    public int FlushCount { get; private set; }

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
                if (_pages.TryGetValue(position / PageSize, out byte[]? page))
                {
                    page.AsSpan(inPage, chunk).CopyTo(destination[done..]);
                }
                else
                {
                    destination.Slice(done, chunk).Clear();
                }

                done += chunk;
            }

            return ValueTask.FromResult(n);
        }
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        lock (_lock)
        {
            ReadOnlySpan<byte> source = buffer.Span;
            for (int done = 0; done < source.Length;)
            {
                long position = offsetBytes + done;
                int inPage = (int)(position % PageSize);
                int chunk = Math.Min(PageSize - inPage, source.Length - done);
                if (!_pages.TryGetValue(position / PageSize, out byte[]? page))
                {
                    page = new byte[PageSize];
                    _pages[position / PageSize] = page;
                }

                source.Slice(done, chunk).CopyTo(page.AsSpan(inPage));
                done += chunk;
            }

            _length = Math.Max(_length, offsetBytes + source.Length);
        }

        return ValueTask.CompletedTask;
    }

    public void SetLength(long lengthBytes)
    {
        EnsureWritable();
        lock (_lock)
        {
            if (lengthBytes < _length)
            {
                ClearRange(lengthBytes, _length - lengthBytes);
            }

            _length = lengthBytes;
        }
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        FlushCount++;
        return ValueTask.CompletedTask;
    }

    public HostExtent GetExtent(long offsetBytes, long maxLengthBytes)
    {
        lock (_lock)
        {
            bool isData = offsetBytes < _length && _pages.ContainsKey(offsetBytes / PageSize);
            long reach = 0;
            long position = offsetBytes;
            while (reach < maxLengthBytes)
            {
                bool pageData = position < _length && _pages.ContainsKey(position / PageSize);
                if (pageData != isData)
                {
                    break;
                }

                long step = PageSize - (position % PageSize);
                if (isData)
                {
                    step = Math.Min(step, _length - position); // data stops at EOF
                }

                reach += step;
                position += step;
                if (position >= _length && !isData)
                {
                    reach = maxLengthBytes; // the rest, past EOF, is all hole
                }
            }

            return new HostExtent(isData, Math.Min(reach, maxLengthBytes));
        }
    }

    public void PunchHole(long offsetBytes, long lengthBytes)
    {
        EnsureWritable();
        lock (_lock)
        {
            ClearRange(offsetBytes, Math.Min(lengthBytes, _length - offsetBytes));
        }
    }

    public void ZeroRange(long offsetBytes, long lengthBytes)
    {
        EnsureWritable();
        lock (_lock)
        {
            ClearRange(offsetBytes, lengthBytes);
            _length = Math.Max(_length, offsetBytes + lengthBytes);
        }
    }

    public void Preallocate(long offsetBytes, long lengthBytes, bool writeZeros)
    {
        EnsureWritable();
        lock (_lock)
        {
            for (long page = offsetBytes / PageSize; page * PageSize < offsetBytes + lengthBytes; page++)
            {
                _pages.TryAdd(page, new byte[PageSize]);
            }

            _length = Math.Max(_length, offsetBytes + lengthBytes);
        }
    }

    public void Dispose()
    {
    }

    // Whole pages in the range are dropped, the partial ones at the edges zeroed.
    private void ClearRange(long offsetBytes, long lengthBytes)
    {
        long end = offsetBytes + lengthBytes;
        for (long position = offsetBytes; position < end;)
        {
            long pageIndex = position / PageSize;
            int inPage = (int)(position % PageSize);
            int chunk = (int)Math.Min(PageSize - inPage, end - position);
            if (chunk == PageSize)
            {
                _pages.Remove(pageIndex);
            }
            else if (_pages.TryGetValue(pageIndex, out byte[]? page))
            {
                page.AsSpan(inPage, chunk).Clear();
            }

            position += chunk;
        }
    }

    private void EnsureWritable()
    {
        if (IsReadOnly)
        {
            throw new HostIOException("the image is opened read-only", Path);
        }
    }
}

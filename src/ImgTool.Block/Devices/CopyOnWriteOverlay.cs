using ImgTool.Block.Host;

namespace ImgTool.Block.Devices;

/// <summary>
/// A writable layer in memory over any device (QEMU's snapshot=on): writes land in the overlay,
/// reads of untouched ranges go to the device underneath, which is never written. Used by boot
/// tests and dry runs so the image under test stays unchanged.
/// </summary>
public sealed class CopyOnWriteOverlay(IBlockDevice lower, bool ownsLower = false) : IBlockDevice
{
    /// <summary>The unit the overlay tracks; partial writes copy the rest of the granule up first.</summary>
    public const int GranuleBytes = 4096;

    private readonly MemoryHostFile _store = new("overlay");

    // Granules the overlay owns: true = data in _store, false = reads as zeros.
    private readonly Dictionary<long, bool> _granules = [];
    private readonly SemaphoreSlim _writeLock = new(1, 1);

    public long SizeBytes => lower.SizeBytes;

    public int Alignment => 1;

    public bool IsReadOnly => false;

    /// <summary>Bytes the overlay holds (what a boot test wrote).</summary>
    public long OverlayBytes => _store.AllocatedBytes;

    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            long position = offsetBytes + done;
            (bool? owned, int run) = Run(position, buffer.Length - done);
            Memory<byte> part = buffer.Slice(done, run);
            switch (owned)
            {
                case true:
                    await _store.ReadZeroFilledAsync(position, part, cancellationToken).ConfigureAwait(false);
                    break;
                case false:
                    part.Span.Clear();
                    break;
                default:
                    await lower.ReadAsync(position, part, cancellationToken).ConfigureAwait(false);
                    break;
            }

            done += run;
        }
    }

    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long first = offsetBytes / GranuleBytes;
            long last = (offsetBytes + buffer.Length - 1) / GranuleBytes;
            byte[] granule = new byte[GranuleBytes];
            foreach (long index in new[] { first, last }.Distinct())
            {
                long start = index * GranuleBytes;
                bool covered = start >= offsetBytes && start + GranuleBytes <= offsetBytes + buffer.Length;
                if (!covered && !IsOwnedData(index))
                {
                    // Copy the granule up before a partial write changes part of it.
                    int length = (int)Math.Min(GranuleBytes, SizeBytes - start);
                    await ReadAsync(start, granule.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                    await _store.WriteAsync(start, granule.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                    SetGranule(index, true);
                }
            }

            await _store.WriteAsync(offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
            for (long index = first; index <= last; index++)
            {
                SetGranule(index, true);
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        // Whole granules become "zero"; the edges are written as zero data.
        long end = offsetBytes + lengthBytes;
        long firstWhole = (offsetBytes + GranuleBytes - 1) / GranuleBytes;
        long endWhole = end / GranuleBytes;
        if (firstWhole >= endWhole)
        {
            await WriteAsync(offsetBytes, new byte[lengthBytes], cancellationToken).ConfigureAwait(false);
            return;
        }

        if (offsetBytes < firstWhole * GranuleBytes)
        {
            await WriteAsync(offsetBytes, new byte[(firstWhole * GranuleBytes) - offsetBytes], cancellationToken).ConfigureAwait(false);
        }

        if (end > endWhole * GranuleBytes)
        {
            await WriteAsync(endWhole * GranuleBytes, new byte[end - (endWhole * GranuleBytes)], cancellationToken).ConfigureAwait(false);
        }

        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _store.PunchHole(firstWhole * GranuleBytes, (endWhole - firstWhole) * GranuleBytes);
            for (long index = firstWhole; index < endWhole; index++)
            {
                SetGranule(index, false);
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        ValueTask.CompletedTask; // discard is a hint; keeping the data is a valid answer

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public async ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        (bool? owned, int run) = Run(offsetBytes, (int)Math.Min(lengthBytes, int.MaxValue));
        if (owned is { } data)
        {
            return new BlockStatus(data ? BlockStatusKind.Data : BlockStatusKind.Zero, run);
        }

        BlockStatus below = await BackingChainStatus.GetAsync(lower, offsetBytes, run, cancellationToken).ConfigureAwait(false);
        return below with { Depth = 0, HostOffsetBytes = -1 };
    }

    public async ValueTask DisposeAsync()
    {
        _store.Dispose();
        _writeLock.Dispose();
        if (ownsLower)
        {
            await lower.DisposeAsync().ConfigureAwait(false);
        }
    }

    private bool IsOwnedData(long index)
    {
        lock (_granules)
        {
            return _granules.TryGetValue(index, out bool data) && data;
        }
    }

    private void SetGranule(long index, bool data)
    {
        lock (_granules)
        {
            _granules[index] = data;
        }
    }

    // The state of the granule at position and how many bytes (up to maxLength) share it.
    private (bool? Owned, int Run) Run(long position, int maxLength)
    {
        lock (_granules)
        {
            bool? state = _granules.TryGetValue(position / GranuleBytes, out bool d) ? d : null;
            int run = 0;
            while (run < maxLength)
            {
                long index = (position + run) / GranuleBytes;
                bool? next = _granules.TryGetValue(index, out bool n) ? n : null;
                if (next != state)
                {
                    break;
                }

                run += (int)Math.Min(maxLength - run, ((index + 1) * GranuleBytes) - (position + run));
            }

            return (state, run);
        }
    }
}

namespace ImgTool.Block.Devices;

/// <summary>
/// Several devices read one after the other as one disk (convert with several sources). Read-only.
/// Its block status is resolved through each part's backing chain, so Unallocated means "reads as
/// zeros" here: the view itself has no backing device.
/// </summary>
public sealed class ConcatenatedDevice : IBlockDevice
{
    private readonly IReadOnlyList<IBlockDevice> _parts;
    private readonly long[] _starts;

    public ConcatenatedDevice(IReadOnlyList<IBlockDevice> parts)
    {
        _parts = parts;
        _starts = new long[parts.Count + 1];
        for (int i = 0; i < parts.Count; i++)
        {
            _starts[i + 1] = _starts[i] + parts[i].SizeBytes;
        }
    }

    public long SizeBytes => _starts[^1];

    public int Alignment => 1;

    public bool IsReadOnly => true;

    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            (int part, long local) = Locate(offsetBytes + done);
            int length = (int)Math.Min(buffer.Length - done, _parts[part].SizeBytes - local);
            await _parts[part].ReadAsync(local, buffer.Slice(done, length), cancellationToken).ConfigureAwait(false);
            done += length;
        }
    }

    public async ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        (int part, long local) = Locate(offsetBytes);
        long length = Math.Min(lengthBytes, _parts[part].SizeBytes - local);
        BlockStatus status = await BackingChainStatus.GetAsync(_parts[part], local, length, cancellationToken).ConfigureAwait(false);
        return status with { HostOffsetBytes = -1 };
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => throw ReadOnly();

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default) => throw ReadOnly();

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => throw ReadOnly();

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <summary>The parts belong to the caller, who disposes them.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private (int Part, long Local) Locate(long offsetBytes)
    {
        // Parts of size zero are skipped: the last part whose start is <= offset and that has bytes there.
        int index = Array.BinarySearch(_starts, offsetBytes);
        int part = index >= 0 ? index : ~index - 1;
        while (part < _parts.Count - 1 && _starts[part + 1] <= offsetBytes)
        {
            part++;
        }

        return (part, offsetBytes - _starts[part]);
    }

    private static InvalidOperationException ReadOnly() => new("a concatenation of sources is read-only");
}

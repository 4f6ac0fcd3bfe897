using ImgTool.Block.Devices;
using ImgTool.Machine.Tests.Platform;

namespace ImgTool.Machine.Tests.Virtio;

/// <summary>An in-memory disk that counts flushes and can be told to fail.</summary>
internal sealed class RecordingDisk(byte[] bytes) : IBlockDevice
{
    private readonly MemoryDisk _inner = new(bytes);

    public byte[] Bytes => bytes;

    public int Flushes { get; private set; }

    public int Writes { get; private set; }

    /// <summary>When set, every read, write and flush throws this (a host I/O error).</summary>
    public Exception? Failure { get; set; }

    public long SizeBytes => _inner.SizeBytes;

    public int Alignment => 1;

    public bool IsReadOnly => false;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Failure is { } e ? throw e : _inner.ReadAsync(offsetBytes, buffer, cancellationToken);

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (Failure is { } e)
        {
            throw e;
        }

        Writes++;
        return _inner.WriteAsync(offsetBytes, buffer, cancellationToken);
    }

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default) =>
        _inner.WriteZeroesAsync(offsetBytes, lengthBytes, flags, cancellationToken);

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        // Asynchronous on purpose: the device must wait for a backend that does not complete at once.
        await Task.Yield();
        if (Failure is { } e)
        {
            throw e;
        }

        Flushes++;
    }

    public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

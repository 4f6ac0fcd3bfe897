using ImgTool.Block.Devices;

namespace ImgTool.Machine.Tests.Platform;

/// <summary>A disk in a byte array, for boot tests that need no image file.</summary>
internal sealed class MemoryDisk(byte[] bytes) : IBlockDevice
{
    public long SizeBytes => bytes.Length;

    public int Alignment => 1;

    public bool IsReadOnly => false;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        bytes.AsSpan((int)offsetBytes, buffer.Length).CopyTo(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        buffer.Span.CopyTo(bytes.AsSpan((int)offsetBytes));
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        bytes.AsSpan((int)offsetBytes, (int)lengthBytes).Clear();
        return ValueTask.CompletedTask;
    }

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

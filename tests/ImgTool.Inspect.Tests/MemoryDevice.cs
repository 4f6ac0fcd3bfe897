using ImgTool.Block.Devices;

namespace ImgTool.Inspect.Tests;

/// <summary>A read-only in-memory disk for the hostile-input tests.</summary>
internal sealed class MemoryDevice(byte[] content) : IBlockDevice
{
    public long SizeBytes => content.Length;

    public int Alignment => 1;

    public bool IsReadOnly => true;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Assert.True(offsetBytes >= 0 && offsetBytes + buffer.Length <= content.Length, $"read of {buffer.Length} at {offsetBytes} outside the {content.Length}-byte device");
        content.AsSpan((int)offsetBytes, buffer.Length).CopyTo(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => throw new InvalidOperationException("inspect must not write");

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default) => throw new InvalidOperationException("inspect must not write");

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => throw new InvalidOperationException("inspect must not write");

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(new BlockStatus(BlockStatusKind.Data, lengthBytes, offsetBytes));

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

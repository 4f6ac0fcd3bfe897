using ImgTool.Block.Devices;

namespace ImgTool.Block.Tests;

/// <summary>A plain in-memory device for tests: all data, never changes unless written.</summary>
internal sealed class ArrayDevice(byte[] content) : IBlockDevice
{
    public byte[] Content { get; } = content;

    public int Writes { get; private set; }

    public long SizeBytes => Content.Length;

    public int Alignment => 1;

    public bool IsReadOnly => false;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Content.AsSpan((int)offsetBytes, buffer.Length).CopyTo(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Writes++;
        buffer.Span.CopyTo(Content.AsSpan((int)offsetBytes));
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        Writes++;
        Content.AsSpan((int)offsetBytes, (int)lengthBytes).Clear();
        return ValueTask.CompletedTask;
    }

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(new BlockStatus(BlockStatusKind.Data, lengthBytes, offsetBytes));

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

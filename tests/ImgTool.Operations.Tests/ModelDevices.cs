using System.IO.Compression;
using ImgTool.Block.Devices;

namespace ImgTool.Operations.Tests;

/// <summary>A source over a byte array whose status says Zero for all-zero 4 KiB granules and Data elsewhere.</summary>
internal sealed class ModelSource(byte[] content) : IBlockDevice
{
    private const int Granule = 4096;

    public long SizeBytes => content.Length;

    public int Alignment => 1;

    public bool IsReadOnly => true;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        content.AsSpan((int)offsetBytes, buffer.Length).CopyTo(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        bool data = !IsZero(offsetBytes);
        long end = offsetBytes;
        while (end < offsetBytes + lengthBytes && !IsZero(end) == data)
        {
            end = Math.Min(offsetBytes + lengthBytes, (end / Granule + 1) * Granule);
        }

        return ValueTask.FromResult(new BlockStatus(data ? BlockStatusKind.Data : BlockStatusKind.Zero, end - offsetBytes));
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private bool IsZero(long offset)
    {
        long start = offset / Granule * Granule;
        int length = (int)Math.Min(Granule, content.Length - start);
        return content.AsSpan((int)start, length).IndexOfAnyExcept((byte)0) < 0;
    }
}

/// <summary>
/// A target that stores units deflated, as a compressed format would, and checks the contract:
/// unit-aligned offsets, strictly increasing order, one writer at a time.
/// </summary>
internal sealed class ModelCompressedTarget(long size, int unitBytes) : IBlockDevice, ICompressedWrites
{
    private int _writing;

    public byte[] Content { get; } = new byte[size];

    public long LastOffset { get; private set; } = -1;

    public int CompressedUnits { get; private set; }

    public int StoredUnits { get; private set; }

    public List<string> Violations { get; } = [];

    public long SizeBytes => Content.Length;

    public int Alignment => 1;

    public bool IsReadOnly => false;

    public int CompressionUnitBytes => unitBytes;

    public int MaxCompressedBytes => unitBytes + 1024;

    public int Compress(ReadOnlySpan<byte> unit, Span<byte> destination)
    {
        if (unit.Length != unitBytes)
        {
            return -2; // a contract violation the test sees as a failed decompression
        }

        using var output = new MemoryStream();
        using (var deflate = new DeflateStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            deflate.Write(unit);
        }

        if (output.Length >= unitBytes)
        {
            return -1;
        }

        output.ToArray().CopyTo(destination);
        return (int)output.Length;
    }

    public async ValueTask WriteCompressedAsync(long offsetBytes, ReadOnlyMemory<byte> compressed, bool isCompressed, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _writing, 1) != 0)
        {
            Violations.Add("concurrent compressed writes");
        }

        if (offsetBytes % unitBytes != 0 || offsetBytes <= LastOffset)
        {
            Violations.Add($"unit at {offsetBytes} after {LastOffset}");
        }

        await Task.Yield();
        LastOffset = offsetBytes;
        byte[] unit = new byte[unitBytes];
        if (isCompressed)
        {
            CompressedUnits++;
            using var deflate = new DeflateStream(new MemoryStream(compressed.ToArray()), CompressionMode.Decompress);
            deflate.ReadExactly(unit);
        }
        else
        {
            StoredUnits++;
            compressed.Span.CopyTo(unit);
        }

        int length = (int)Math.Min(unitBytes, Content.Length - offsetBytes);
        unit.AsSpan(0, length).CopyTo(Content.AsSpan((int)offsetBytes));
        Volatile.Write(ref _writing, 0);
    }

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Violations.Add($"plain write at {offsetBytes} during a compressed convert");
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        Violations.Add($"write-zeroes at {offsetBytes} into a zero target");
        return ValueTask.CompletedTask;
    }

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

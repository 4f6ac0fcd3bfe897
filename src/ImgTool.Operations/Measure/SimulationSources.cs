using System.Buffers.Binary;
using ImgTool.Block.Devices;

namespace ImgTool.Operations.Measure;

/// <summary>
/// The source of a simulated convert into an uncompressed format: the real source's block status, and its data read
/// with every 512-byte sector that holds anything but zeros turned into <see cref="SimulatedHostFile.FillByte"/>.
/// Which sectors (and so which granules, clusters, grains and blocks) are zero is unchanged, which is all an
/// uncompressed target's layout depends on, while the target's files keep data as marks instead of bytes.
/// </summary>
internal sealed class SectorFillDevice(IBlockDevice source) : ReadOnlySimulationDevice(source.SizeBytes)
{
    private const int SectorBytes = 512;

    public override async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await source.ReadAsync(offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
        Span<byte> data = buffer.Span;
        for (int done = 0; done < data.Length;)
        {
            int chunk = (int)Math.Min(SectorBytes - ((offsetBytes + done) % SectorBytes), data.Length - done);
            Span<byte> sector = data.Slice(done, chunk);
            if (sector.IndexOfAnyExcept((byte)0) >= 0)
            {
                sector.Fill(SimulatedHostFile.FillByte);
            }

            done += chunk;
        }
    }

    public override ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        source.GetStatusAsync(offsetBytes, lengthBytes, cancellationToken);
}

/// <summary>A disk that holds data everywhere, for the fully allocated figure: <see cref="SimulatedHostFile.FillByte"/>
/// for uncompressed targets, or bytes that do not compress (a counter-based generator) for compressed ones, the worst
/// case a compressing format stores.</summary>
internal sealed class AllDataDevice(long sizeBytes, bool incompressible) : ReadOnlySimulationDevice(sizeBytes)
{
    public override ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Span<byte> data = buffer.Span;
        if (!incompressible)
        {
            data.Fill(SimulatedHostFile.FillByte);
            return ValueTask.CompletedTask;
        }

        // SplitMix64 of the absolute 8-byte word index: the same bytes for the same offset, whatever the request.
        Span<byte> word = stackalloc byte[8];
        for (int done = 0; done < data.Length;)
        {
            long position = offsetBytes + done;
            BinaryPrimitives.WriteUInt64LittleEndian(word, Mix((ulong)(position / 8)));
            int inWord = (int)(position % 8);
            int chunk = Math.Min(8 - inWord, data.Length - done);
            word.Slice(inWord, chunk).CopyTo(data[done..]);
            done += chunk;
        }

        return ValueTask.CompletedTask;
    }

    public override ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(new BlockStatus(BlockStatusKind.Data, lengthBytes));

    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }
}

/// <summary>A disk of zeros (measure --size): what a new image needs before any data is written.</summary>
internal sealed class EmptyDevice(long sizeBytes) : ReadOnlySimulationDevice(sizeBytes)
{
    public override ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        buffer.Span.Clear();
        return ValueTask.CompletedTask;
    }

    public override ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(new BlockStatus(BlockStatusKind.Zero, lengthBytes));
}

/// <summary>A read-only device for simulations: writes are a bug.</summary>
internal abstract class ReadOnlySimulationDevice(long sizeBytes) : IBlockDevice
{
    public long SizeBytes { get; } = sizeBytes;

    public int Alignment => 1;

    public bool IsReadOnly => true;

    public abstract ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default);

    public abstract ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default);

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        throw new InvalidOperationException("a measure source is read-only");

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default) =>
        throw new InvalidOperationException("a measure source is read-only");

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        throw new InvalidOperationException("a measure source is read-only");

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

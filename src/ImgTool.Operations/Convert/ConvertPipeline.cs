using System.Buffers;
using System.Threading.Channels;
using ImgTool.Block.Devices;
using ImgTool.Operations.Common;

namespace ImgTool.Operations.Convert;

/// <summary>
/// Copies a source into a target: walks block status so zero and unallocated ranges are never read,
/// reads data in chunks with several requests in flight, finds zero granules in what it read, and
/// writes in order (or out of order with -W). With compression, whole units are compressed by the
/// workers in parallel and written strictly in order. Memory stays at (parallel x chunk) whatever the size.
/// </summary>
internal sealed class ConvertPipeline
{
    /// <summary>The largest request, as qemu-img's (2 MiB); data extents are cut at multiples of it.</summary>
    public const int ChunkBytes = 2 << 20;

    /// <summary>Status is asked for in pieces no larger than this, so a query never walks a whole huge image.</summary>
    private const long StatusQueryBytes = 1L << 30;

    private readonly IBlockDevice _source;
    private readonly IBlockDevice _target;
    private readonly ICompressedWrites? _compressed;
    private readonly long _sparseBytes;
    private readonly bool _targetIsZero;
    private readonly int _parallel;
    private readonly bool _outOfOrder;
    private readonly ContiguousProgress _progress;
    private readonly int _chunkBytes;
    private readonly OrderedGate _gate = new();
    private long _dataBytesRead;
    private long _bytesWritten;
    private long _zeroBytesSkipped;
    private long _zeroBytesWritten;

    /// <param name="compressed">The target's compressed-write capability when converting with -c, else null.</param>
    public ConvertPipeline(IBlockDevice source, IBlockDevice target, ICompressedWrites? compressed, long sparseBytes, bool targetIsZero, int parallel, bool outOfOrder, IProgress<ProgressReport>? progress)
    {
        _source = source;
        _target = target;
        _compressed = compressed;
        _sparseBytes = sparseBytes;
        _targetIsZero = targetIsZero;
        _parallel = parallel;
        _progress = new ContiguousProgress("convert", source.SizeBytes, progress);

        // Compressed units must reach the device in order: that is how it lays them out.
        _outOfOrder = outOfOrder && compressed is null;
        _chunkBytes = compressed is null
            ? ChunkBytes
            : Math.Max(compressed.CompressionUnitBytes, ChunkBytes / compressed.CompressionUnitBytes * compressed.CompressionUnitBytes);
    }

    /// <summary>-B: ranges the source's top layer leaves unallocated are not written, so the target's backing
    /// file shows through there (qemu-img's BLK_BACKING_FILE); zeros are written as zeros.</summary>
    public bool LeavesUnallocatedToBacking { get; init; }

    public long TotalBytes => _source.SizeBytes;

    public long DataBytesRead => _dataBytesRead;

    public long BytesWritten => _bytesWritten;

    public long ZeroBytesSkipped => _zeroBytesSkipped;

    public long ZeroBytesWritten => _zeroBytesWritten;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var jobs = Channel.CreateBounded<Job>(new BoundedChannelOptions(_parallel) { SingleWriter = true });
        var workers = new Task[_parallel];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = Task.Run(() => WorkAsync(jobs.Reader, failed), failed.Token);
        }

        Task producer = ProduceAsync(jobs.Writer, failed);
        try
        {
            await Task.WhenAll([producer, .. workers]).ConfigureAwait(false);
        }
        catch when (!cancellationToken.IsCancellationRequested)
        {
            // Report the failure that started it, not the cancellations it caused in the other tasks.
            Exception first = new[] { producer }.Concat(workers)
                .Where(t => t.IsFaulted)
                .Select(t => t.Exception!.InnerException!)
                .FirstOrDefault(e => e is not OperationCanceledException)
                ?? new OperationCanceledException();
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        }

        _progress.Finish();
    }

    private async Task ProduceAsync(ChannelWriter<Job> writer, CancellationTokenSource failed)
    {
        try
        {
            long sequence = 0;
            long size = _source.SizeBytes;

            // With compression every job covers whole units (the disk's last unit may be short), so
            // offsets stay unit-aligned: zero extents shrink to whole units, data extents widen to them.
            long unit = _compressed?.CompressionUnitBytes ?? 1;
            for (long offset = 0; offset < size;)
            {
                long remaining = size - offset;
                BlockStatus status = _sparseBytes == 0
                    ? new BlockStatus(BlockStatusKind.Data, remaining)
                    : await _source.GetStatusAsync(offset, Math.Min(remaining, StatusQueryBytes), failed.Token).ConfigureAwait(false);
                long extentEnd = offset + status.LengthBytes;
                if (status.Kind != BlockStatusKind.Data || status.DataIsHostHole)
                {
                    long zeroEnd = extentEnd == size ? size : extentEnd / unit * unit;
                    if (zeroEnd > offset)
                    {
                        JobKind kind = LeavesUnallocatedToBacking && status.Kind == BlockStatusKind.Unallocated ? JobKind.Backing : JobKind.Zero;
                        await writer.WriteAsync(new Job(sequence++, offset, zeroEnd - offset, kind), failed.Token).ConfigureAwait(false);
                        offset = zeroEnd;
                        continue;
                    }

                    extentEnd = Math.Min(size, offset + unit); // a zero run inside a unit that also holds data
                }

                long chunkEnd = ((offset / _chunkBytes) + 1) * _chunkBytes;
                long pieceEnd = Math.Min(size, AlignUp(Math.Min(extentEnd, chunkEnd), unit));
                await writer.WriteAsync(new Job(sequence++, offset, pieceEnd - offset, JobKind.Data), failed.Token).ConfigureAwait(false);
                offset = pieceEnd;
            }

            writer.Complete();
        }
        catch (Exception e)
        {
            writer.TryComplete(e);
            await failed.CancelAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task WorkAsync(ChannelReader<Job> reader, CancellationTokenSource failed)
    {
        CancellationToken token = failed.Token;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(_chunkBytes);
        byte[]? packed = _compressed is null ? null : ArrayPool<byte>.Shared.Rent((_chunkBytes / _compressed.CompressionUnitBytes) * _compressed.MaxCompressedBytes);
        var units = new List<PackedUnit>();
        try
        {
            await foreach (Job job in reader.ReadAllAsync(token).ConfigureAwait(false))
            {
                if (job.Kind == JobKind.Data)
                {
                    Memory<byte> data = buffer.AsMemory(0, (int)job.LengthBytes);
                    await _source.ReadAsync(job.OffsetBytes, data, token).ConfigureAwait(false);
                    Interlocked.Add(ref _dataBytesRead, job.LengthBytes);
                    if (_compressed is not null)
                    {
                        Pack(job, units, packed!);
                        await WaitTurnAsync(job, token).ConfigureAwait(false);
                        await WritePackedAsync(units, packed!, token).ConfigureAwait(false);
                    }
                    else
                    {
                        await WaitTurnAsync(job, token).ConfigureAwait(false);
                        await WriteDataAsync(job.OffsetBytes, data, token).ConfigureAwait(false);
                    }
                }
                else if (job.Kind == JobKind.Zero)
                {
                    await WaitTurnAsync(job, token).ConfigureAwait(false);
                    await WriteZeroRangeAsync(job.OffsetBytes, job.LengthBytes, token).ConfigureAwait(false);
                }
                else
                {
                    await WaitTurnAsync(job, token).ConfigureAwait(false); // left to the backing file: nothing to write
                }

                if (!_outOfOrder)
                {
                    _gate.Advance(job.Sequence);
                }

                _progress.Complete(job.Sequence, job.OffsetBytes + job.LengthBytes);
            }
        }
        catch
        {
            await failed.CancelAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            if (packed is not null)
            {
                ArrayPool<byte>.Shared.Return(packed);
            }
        }

        // Compresses each non-zero unit of the chunk just read (the CPU-heavy part, in parallel across workers).
        void Pack(Job job, List<PackedUnit> packedUnits, byte[] output)
        {
            int unitBytes = _compressed!.CompressionUnitBytes;
            int length = (int)job.LengthBytes;
            int padded = (int)AlignUp(length, unitBytes);
            buffer.AsSpan(length, padded - length).Clear(); // the disk's last unit is zero-padded
            packedUnits.Clear();
            int outputPosition = 0;
            for (int position = 0; position < padded; position += unitBytes)
            {
                ReadOnlySpan<byte> unit = buffer.AsSpan(position, unitBytes);
                long unitOffset = job.OffsetBytes + position;
                int unitLength = Math.Min(unitBytes, length - position);
                if (ZeroScan.IsAllZero(unit))
                {
                    packedUnits.Add(new PackedUnit(unitOffset, unitLength, -1, 0, IsZero: true, IsCompressed: false));
                    continue;
                }

                int compressedLength = _compressed.Compress(unit, output.AsSpan(outputPosition, _compressed.MaxCompressedBytes));
                if (compressedLength < 0)
                {
                    packedUnits.Add(new PackedUnit(unitOffset, unitLength, position, unitBytes, IsZero: false, IsCompressed: false));
                }
                else
                {
                    packedUnits.Add(new PackedUnit(unitOffset, unitLength, outputPosition, compressedLength, IsZero: false, IsCompressed: true));
                    outputPosition += compressedLength;
                }
            }
        }

        async ValueTask WritePackedAsync(List<PackedUnit> packedUnits, byte[] output, CancellationToken ct)
        {
            foreach (PackedUnit unit in packedUnits)
            {
                if (unit.IsZero)
                {
                    await WriteZeroRangeAsync(unit.OffsetBytes, unit.LengthBytes, ct).ConfigureAwait(false);
                    continue;
                }

                ReadOnlyMemory<byte> bytes = unit.IsCompressed ? output.AsMemory(unit.DataStart, unit.DataLength) : buffer.AsMemory(unit.DataStart, unit.DataLength);
                await _compressed!.WriteCompressedAsync(unit.OffsetBytes, bytes, unit.IsCompressed, ct).ConfigureAwait(false);
                Interlocked.Add(ref _bytesWritten, unit.LengthBytes);
            }
        }
    }

    private ValueTask WaitTurnAsync(Job job, CancellationToken token) =>
        _outOfOrder ? ValueTask.CompletedTask : _gate.WaitTurnAsync(job.Sequence, token);

    /// <summary>Writes what was read, leaving out zero granules of at least -S bytes.</summary>
    private async ValueTask WriteDataAsync(long targetOffset, ReadOnlyMemory<byte> data, CancellationToken token)
    {
        if (_sparseBytes == 0)
        {
            await _target.WriteAsync(targetOffset, data, token).ConfigureAwait(false);
            Interlocked.Add(ref _bytesWritten, data.Length);
            return;
        }

        for (int position = 0; position < data.Length;)
        {
            int run = ZeroScan.RunLength(data.Span[position..], targetOffset + position, (int)_sparseBytes, out bool zero);
            if (zero)
            {
                await WriteZeroRangeAsync(targetOffset + position, run, token).ConfigureAwait(false);
            }
            else
            {
                await _target.WriteAsync(targetOffset + position, data.Slice(position, run), token).ConfigureAwait(false);
                Interlocked.Add(ref _bytesWritten, run);
            }

            position += run;
        }
    }

    private async ValueTask WriteZeroRangeAsync(long targetOffset, long length, CancellationToken token)
    {
        if (_targetIsZero)
        {
            Interlocked.Add(ref _zeroBytesSkipped, length);
            return;
        }

        // -S 0 asks for a fully allocated target: zeros are allocated, not unmapped.
        BlockZeroFlags flags = _sparseBytes == 0 ? BlockZeroFlags.None : BlockZeroFlags.MayUnmap;
        await _target.WriteZeroesAsync(targetOffset, length, flags, token).ConfigureAwait(false);
        Interlocked.Add(ref _zeroBytesWritten, length);
    }

    private static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;

    private enum JobKind
    {
        Data,
        Zero,
        Backing,
    }

    private readonly record struct Job(long Sequence, long OffsetBytes, long LengthBytes, JobKind Kind);

    /// <summary>One unit of a compressed chunk: where its bytes are (in the packed output, or the read buffer when stored as is).</summary>
    private readonly record struct PackedUnit(long OffsetBytes, int LengthBytes, int DataStart, int DataLength, bool IsZero, bool IsCompressed);
}

using System.Buffers;
using System.Threading.Channels;
using ImgTool.Block.Devices;
using ImgTool.Operations.Common;

namespace ImgTool.Operations.Convert;

/// <summary>
/// Copies sources into a target: walks block status so zero and unallocated ranges are never read,
/// reads data in chunks with several requests in flight, finds zero granules in what it read, and
/// writes in order (or out of order with -W). Memory stays at (parallel x chunk) whatever the size.
/// </summary>
internal sealed class ConvertPipeline(
    IReadOnlyList<IBlockDevice> sources,
    IBlockDevice target,
    long sparseBytes,
    bool targetIsZero,
    int parallel,
    bool outOfOrder,
    IProgress<ProgressReport>? progress)
{
    /// <summary>The largest request, as qemu-img's (2 MiB); data extents are cut at multiples of it.</summary>
    public const int ChunkBytes = 2 << 20;

    /// <summary>Status is asked for in pieces no larger than this, so a query never walks a whole huge image.</summary>
    private const long StatusQueryBytes = 1L << 30;

    private readonly OrderedGate _gate = new();
    private long _dataBytesRead;
    private long _bytesWritten;
    private long _zeroBytesSkipped;
    private long _zeroBytesWritten;
    private long _doneBytes;

    public long TotalBytes { get; } = sources.Sum(s => s.SizeBytes);

    public long DataBytesRead => _dataBytesRead;

    public long BytesWritten => _bytesWritten;

    public long ZeroBytesSkipped => _zeroBytesSkipped;

    public long ZeroBytesWritten => _zeroBytesWritten;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var jobs = Channel.CreateBounded<Job>(new BoundedChannelOptions(parallel) { SingleWriter = true });
        var workers = new Task[parallel];
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

        progress?.Report(new ProgressReport("convert", TotalBytes, TotalBytes));
    }

    private async Task ProduceAsync(ChannelWriter<Job> writer, CancellationTokenSource failed)
    {
        try
        {
            long sequence = 0;
            long targetBase = 0;
            foreach (IBlockDevice source in sources)
            {
                for (long offset = 0; offset < source.SizeBytes;)
                {
                    long remaining = source.SizeBytes - offset;
                    BlockStatus status = sparseBytes == 0
                        ? new BlockStatus(BlockStatusKind.Data, remaining)
                        : await BackingChainStatus.GetAsync(source, offset, Math.Min(remaining, StatusQueryBytes), failed.Token).ConfigureAwait(false);
                    long extentEnd = offset + status.LengthBytes;
                    if (status.Kind != BlockStatusKind.Data)
                    {
                        await writer.WriteAsync(new Job(sequence++, source, offset, targetBase + offset, status.LengthBytes, IsData: false), failed.Token).ConfigureAwait(false);
                        offset = extentEnd;
                        continue;
                    }

                    while (offset < extentEnd)
                    {
                        long pieceEnd = Math.Min(extentEnd, ((offset / ChunkBytes) + 1) * ChunkBytes);
                        await writer.WriteAsync(new Job(sequence++, source, offset, targetBase + offset, pieceEnd - offset, IsData: true), failed.Token).ConfigureAwait(false);
                        offset = pieceEnd;
                    }
                }

                targetBase += source.SizeBytes;
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
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            await foreach (Job job in reader.ReadAllAsync(token).ConfigureAwait(false))
            {
                if (job.IsData)
                {
                    Memory<byte> data = buffer.AsMemory(0, (int)job.LengthBytes);
                    await job.Source.ReadAsync(job.SourceOffsetBytes, data, token).ConfigureAwait(false);
                    Interlocked.Add(ref _dataBytesRead, job.LengthBytes);
                    await WaitTurnAsync(job, token).ConfigureAwait(false);
                    await WriteDataAsync(job.TargetOffsetBytes, data, token).ConfigureAwait(false);
                }
                else
                {
                    await WaitTurnAsync(job, token).ConfigureAwait(false);
                    await WriteZeroRangeAsync(job.TargetOffsetBytes, job.LengthBytes, token).ConfigureAwait(false);
                }

                if (!outOfOrder)
                {
                    _gate.Advance(job.Sequence);
                }

                long done = Interlocked.Add(ref _doneBytes, job.LengthBytes);
                progress?.Report(new ProgressReport("convert", done, TotalBytes));
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
        }
    }

    private ValueTask WaitTurnAsync(Job job, CancellationToken token) =>
        outOfOrder ? ValueTask.CompletedTask : _gate.WaitTurnAsync(job.Sequence, token);

    /// <summary>Writes what was read, leaving out zero granules of at least -S bytes.</summary>
    private async ValueTask WriteDataAsync(long targetOffset, ReadOnlyMemory<byte> data, CancellationToken token)
    {
        if (sparseBytes == 0)
        {
            await target.WriteAsync(targetOffset, data, token).ConfigureAwait(false);
            Interlocked.Add(ref _bytesWritten, data.Length);
            return;
        }

        for (int position = 0; position < data.Length;)
        {
            int run = ZeroScan.RunLength(data.Span[position..], targetOffset + position, (int)sparseBytes, out bool zero);
            if (zero)
            {
                await WriteZeroRangeAsync(targetOffset + position, run, token).ConfigureAwait(false);
            }
            else
            {
                await target.WriteAsync(targetOffset + position, data.Slice(position, run), token).ConfigureAwait(false);
                Interlocked.Add(ref _bytesWritten, run);
            }

            position += run;
        }
    }

    private async ValueTask WriteZeroRangeAsync(long targetOffset, long length, CancellationToken token)
    {
        if (targetIsZero)
        {
            Interlocked.Add(ref _zeroBytesSkipped, length);
            return;
        }

        // -S 0 asks for a fully allocated target: zeros are allocated, not unmapped.
        BlockZeroFlags flags = sparseBytes == 0 ? BlockZeroFlags.None : BlockZeroFlags.MayUnmap;
        await target.WriteZeroesAsync(targetOffset, length, flags, token).ConfigureAwait(false);
        Interlocked.Add(ref _zeroBytesWritten, length);
    }

    private readonly record struct Job(long Sequence, IBlockDevice Source, long SourceOffsetBytes, long TargetOffsetBytes, long LengthBytes, bool IsData);
}

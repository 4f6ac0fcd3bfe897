using System.Diagnostics;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Formats;

namespace ImgTool.Operations.Bench;

/// <summary>imgtool bench's options, as qemu-img bench's (defaults: 75000 requests of 4 KiB, 64 in flight, reads).</summary>
/// <param name="Count">-c: requests to send.</param>
/// <param name="Depth">-d: requests in flight at most.</param>
/// <param name="OffsetBytes">-o: where the first request starts.</param>
/// <param name="BufferBytes">-s: bytes per request.</param>
/// <param name="StepBytes">-S: how far each request starts after the one before (null: the buffer size); the offsets
/// wrap round to the start before a request would pass the end of the image.</param>
/// <param name="FlushInterval">--flush-interval: with -w, a flush after every this many requests (0: none).</param>
/// <param name="Drain">Without --no-drain, the requests in flight complete before each flush is sent.</param>
/// <param name="Pattern">--pattern: the byte written by -w.</param>
public sealed record BenchOptions(
    string FileName,
    string? Format = null,
    int Count = 75000,
    int Depth = 64,
    long OffsetBytes = 0,
    int BufferBytes = 4096,
    int? StepBytes = null,
    bool Write = false,
    int FlushInterval = 0,
    bool Drain = true,
    byte Pattern = 0,
    CacheMode Cache = CacheMode.Writeback,
    bool ForceShare = false)
{
    public int EffectiveStepBytes => StepBytes ?? BufferBytes;
}

public sealed record BenchResult(BenchOptions Options, TimeSpan Elapsed, long Flushes);

/// <summary>
/// imgtool bench: qemu-img bench's I/O benchmark. Requests go through the format driver (not to the file underneath),
/// as QEMU's do, with up to <see cref="BenchOptions.Depth"/> in flight; request N starts at
/// (offset + N * step) mod (image size - buffer size) after the first, exactly QEMU's sequence.
/// </summary>
public sealed class BenchOperation(ImageOpener opener)
{

    public async ValueTask<BenchResult> RunAsync(BenchOptions options, CancellationToken cancellationToken = default)
    {
        Validate(options);
        await using IImage image = await opener.OpenAsync(
            options.FileName,
            new ImageOpenRequest(options.Format, ReadOnly: !options.Write, ForceShare: options.ForceShare, Cache: options.Cache),
            cancellationToken).ConfigureAwait(false);
        long size = image.SizeBytes;
        if (FirstRequestPastEnd(options, size) is var past and >= 0)
        {
            throw new InvalidOptionException(
                $"Failed request: request {past + 1} ({options.BufferBytes} bytes at offset {RequestOffset(past, options, size)}) would reach past the end of the image ({size} bytes); nothing was sent",
                options.FileName);
        }

        var stopwatch = Stopwatch.StartNew();
        long flushes = await RunRequestsAsync(image, options, cancellationToken).ConfigureAwait(false);
        return new BenchResult(options, stopwatch.Elapsed, flushes);
    }

    /// <summary>Offset of request <paramref name="index"/>: QEMU's bench_cb adds the step and wraps modulo the image size
    /// (0 for an empty image); the first request is at the offset as given.</summary>
    public static long RequestOffset(long index, BenchOptions options, long imageSizeBytes)
    {
        if (index == 0)
        {
            return options.OffsetBytes;
        }

        return imageSizeBytes == 0 ? 0 : (long)((((UInt128)(ulong)options.OffsetBytes) + ((UInt128)(ulong)index * (ulong)options.EffectiveStepBytes)) % (ulong)imageSizeBytes);
    }

    /// <summary>The first request of the run that would reach past the end of the image, or -1. QEMU finds out when that
    /// request fails ("Failed request: Input/output error"), after writing the ones before it; the offsets are known in
    /// advance, so imgtool refuses the run before it sends anything.</summary>
    public static long FirstRequestPastEnd(BenchOptions options, long imageSizeBytes)
    {
        // After the first request the offsets repeat with a period of size / gcd(step, size): no need to look further.
        long period = imageSizeBytes == 0 ? 1 : imageSizeBytes / (long)System.Numerics.BigInteger.GreatestCommonDivisor(options.EffectiveStepBytes % imageSizeBytes, imageSizeBytes);
        long checks = Math.Min(options.Count, period + 1);
        for (long index = 0; index < checks; index++)
        {
            if (RequestOffset(index, options, imageSizeBytes) > imageSizeBytes - options.BufferBytes)
            {
                return index;
            }
        }

        return -1;
    }

    /// <summary>
    /// <see cref="BenchOptions.Depth"/> workers take the next request number in turn, so as many requests are in
    /// flight as QEMU keeps. With --flush-interval the run goes in segments of that many requests: each segment's
    /// requests complete (the drain), then the flush; with --no-drain the worker that completes every Nth request sends
    /// the flush itself while the others go on.
    /// </summary>
    private static async ValueTask<long> RunRequestsAsync(IImage image, BenchOptions options, CancellationToken cancellationToken)
    {
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var run = new Run(image, options, failed);
        bool drainThenFlush = options.Write && options.FlushInterval > 0 && options.Drain;
        int segment = drainThenFlush ? options.FlushInterval : Math.Max(options.Count, 1);
        byte[][] buffers = new byte[Math.Min(options.Depth, Math.Max(Math.Min(options.Count, segment), 1))][];
        for (int i = 0; i < buffers.Length; i++)
        {
            // Pinned, as QEMU's are aligned: with -t none the host file then needs no bounce buffer.
            buffers[i] = GC.AllocateUninitializedArray<byte>(options.BufferBytes, pinned: true);
            buffers[i].AsSpan().Fill(options.Pattern);
        }

        for (long start = 0; start < options.Count; start += segment)
        {
            long end = Math.Min(options.Count, start + segment);
            run.Next = start;
            try
            {
                await Task.WhenAll(buffers.Take((int)Math.Min(buffers.Length, end - start)).Select(b => run.WorkAsync(b, end))).ConfigureAwait(false);
            }
            catch when (run.Failure is { } first && !cancellationToken.IsCancellationRequested)
            {
                throw first is ImgToolException ? first : new HostIOException($"Failed request: {first.Message}", image.HostFile.Path, first);
            }

            if (drainThenFlush && end % options.FlushInterval == 0)
            {
                await image.FlushAsync(cancellationToken).ConfigureAwait(false);
                run.Flushes++;
            }
        }

        return run.Flushes;
    }

    /// <summary>The state the workers share: the next request number and the flush count.</summary>
    private sealed class Run(IImage image, BenchOptions options, CancellationTokenSource failed)
    {
        private long _next;
        private long _flushes;
        private Exception? _failure;

        /// <summary>The first request that failed (the others were cancelled because of it).</summary>
        public Exception? Failure => Volatile.Read(ref _failure);

        public long Next
        {
            get => Interlocked.Read(ref _next);
            set => Interlocked.Exchange(ref _next, value);
        }

        public long Flushes
        {
            get => Interlocked.Read(ref _flushes);
            set => Interlocked.Exchange(ref _flushes, value);
        }

        public async Task WorkAsync(byte[] buffer, long end)
        {
            bool flushesHere = options.Write && options.FlushInterval > 0 && !options.Drain;
            try
            {
                for (long index = Interlocked.Increment(ref _next) - 1; index < end; index = Interlocked.Increment(ref _next) - 1)
                {
                    failed.Token.ThrowIfCancellationRequested();
                    await RequestAsync(image, options.Write, RequestOffset(index, options, image.SizeBytes), buffer, failed.Token).ConfigureAwait(false);
                    if (flushesHere && (index + 1) % options.FlushInterval == 0)
                    {
                        await image.FlushAsync(failed.Token).ConfigureAwait(false);
                        Interlocked.Increment(ref _flushes);
                    }
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !failed.IsCancellationRequested)
            {
                // The other workers stop too; the first failure is the one reported.
                Interlocked.CompareExchange(ref _failure, e, null);
                await failed.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    private static async Task RequestAsync(IImage image, bool write, long offset, byte[] buffer, CancellationToken cancellationToken)
    {
        if (write)
        {
            await image.WriteAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await image.ReadAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The checks that need no image, so the command can make them before printing its header.</summary>
    public static void Validate(BenchOptions options)
    {
        if (options.Count < 0)
        {
            throw new InvalidOptionException("Invalid request count specified");
        }

        if (options.Depth < 1)
        {
            // qemu-img 7.2 accepts -d 0 and then waits forever for a request it never sends.
            throw new InvalidOptionException("Invalid queue depth specified");
        }

        if (options.OffsetBytes < 0)
        {
            throw new InvalidOptionException("Invalid offset specified");
        }

        if (options.BufferBytes < 0)
        {
            throw new InvalidOptionException("Invalid buffer size specified");
        }

        if (options.StepBytes < 0)
        {
            throw new InvalidOptionException("Invalid step_size specified");
        }

        if (options.FlushInterval < 0)
        {
            throw new InvalidOptionException("Invalid flush interval specified");
        }

        if (options.FlushInterval > 0 && !options.Write)
        {
            throw new InvalidOptionException("--flush-interval is only available in write tests");
        }

        if (options.FlushInterval > 0 && options.FlushInterval < options.Depth)
        {
            throw new InvalidOptionException("Flush interval can't be smaller than depth");
        }
    }
}

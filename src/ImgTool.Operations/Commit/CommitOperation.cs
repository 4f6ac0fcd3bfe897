using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Formats;
using ImgTool.Operations.Common;
using ImgTool.Operations.Resize;

namespace ImgTool.Operations.Commit;

/// <param name="FileName">The overlay whose data is committed.</param>
/// <param name="Format">-f: the overlay's format, or null to probe.</param>
/// <param name="BaseFileName">-b: the image of the chain that receives the data, or null for the overlay's backing file.</param>
/// <param name="Drop">-d: leave the overlay as it is instead of emptying it (-b implies it, as in qemu-img).</param>
/// <param name="RateLimitBytesPerSecond">-r: at most this many bytes are written per second, or null for no limit.</param>
/// <param name="AfterWrite">Called after every write with the running count (the crash-test hook).</param>
public sealed record CommitOptions(
    string FileName,
    string? Format = null,
    string? BaseFileName = null,
    bool Drop = false,
    CacheMode Cache = CacheMode.Writeback,
    long? RateLimitBytesPerSecond = null,
    Action<int>? AfterWrite = null);

/// <summary>What commit did: where the data went and how much was written.</summary>
/// <param name="BaseDepth">How far down the chain the base is (1: the overlay's own backing file).</param>
/// <param name="DataBytes">Guest bytes written to the base as data.</param>
/// <param name="ZeroBytes">Guest bytes made to read as zeros in the base.</param>
/// <param name="BaseResizedTo">The base's new size when it was smaller than the overlay, else null.</param>
/// <param name="Emptied">The overlay was emptied (false with -d or -b, or when its format cannot be emptied).</param>
public sealed record CommitResult(
    string FileName,
    string BaseFileName,
    int BaseDepth,
    long DataBytes,
    long ZeroBytes,
    long? BaseResizedTo,
    bool Emptied,
    TimeSpan Elapsed);

/// <summary>
/// imgtool commit: copies what the overlay (and every image between it and the base) stores into the base, then
/// empties the overlay. Restartable: while the data is copied the overlay is not touched, and for every range the
/// base receives exactly what the overlay's chain reads there, so the overlay reads the same at every moment; the
/// overlay is emptied only once the base is flushed, and an emptied range then reads the same data from the base.
/// Running commit again after an interruption simply copies again.
/// </summary>
public sealed class CommitOperation(ImageOpener opener)
{
    /// <summary>Guest bytes per request: large units, as qemu's commit job (and convert) use.</summary>
    private const int ChunkBytes = 2 << 20;

    /// <summary>Requests in flight while copying, as qemu-img convert's default.</summary>
    private const int InFlight = 8;

    /// <summary>Ranges found ahead before they are copied: bounds memory whatever the image size.</summary>
    private const int BatchRanges = 64;

    public async ValueTask<CommitResult> RunAsync(CommitOptions options, IProgress<ProgressReport>? progress = null, CancellationToken cancellationToken = default)
    {
        var started = Stopwatch.StartNew();
        var writes = new WriteCounter(options.AfterWrite);
        long dataBytes = 0, zeroBytes = 0;
        long? resizedTo = null;
        string baseFileName;
        int baseDepth;
        string? overlayFormat;

        // The chain is read without locks so the base can be opened for writing alongside it; the base's own write
        // lock keeps other writers out, and the overlay is locked again when it is emptied.
        await using (IImage top = await opener.OpenAsync(options.FileName, new ImageOpenRequest(options.Format, ForceShare: true, Cache: options.Cache), cancellationToken).ConfigureAwait(false))
        {
            overlayFormat = top.FormatName;
            IReadOnlyList<IImage> chain = Chain(top);
            if (chain.Count < 2)
            {
                throw new BackingFileException("Image does not have a backing file", options.FileName);
            }

            baseDepth = FindBase(chain, options);
            IImage baseLayer = chain[baseDepth];
            baseFileName = baseLayer.HostFile.Path;
            if (baseLayer.SizeBytes < top.SizeBytes)
            {
                // As qemu-img: a smaller base grows to the overlay's size (reading zeros there); a larger one keeps its size.
                await new ResizeOperation(opener).RunAsync(
                    new ResizeOptions(baseFileName, top.SizeBytes.ToString(CultureInfo.InvariantCulture), baseLayer.FormatName, Cache: options.Cache),
                    cancellationToken).ConfigureAwait(false);
                resizedTo = top.SizeBytes;
            }

            await using IImage target = await opener.OpenAsync(
                baseFileName,
                new ImageOpenRequest(baseLayer.FormatName, ReadOnly: false, Cache: options.Cache),
                cancellationToken).ConfigureAwait(false);
            // Ranges are found by block status in order and copied a batch at a time with several requests in flight
            // (each range is written once and independently, so their order does not matter for a restart); with a
            // rate limit, one at a time so the limit holds.
            var throttle = new Throttle(options.RateLimitBytesPerSecond);
            int inFlight = options.RateLimitBytesPerSecond is > 0 ? 1 : InFlight;
            var batch = new List<CopyRange>(BatchRanges);
            long copiedData = 0, copiedZero = 0;
            for (long offset = 0; offset < top.SizeBytes;)
            {
                BlockStatus status = await BackingChainStatus.GetAsync(top, offset, Math.Min(ChunkBytes, top.SizeBytes - offset), cancellationToken).ConfigureAwait(false);
                if (status.Depth < baseDepth)
                {
                    // Above the base: the base must read what the overlay's chain reads here. An unallocated answer
                    // above the base means the range lies past a shorter layer's end, where the chain reads zeros.
                    batch.Add(new CopyRange(offset, status.LengthBytes, status.Kind == BlockStatusKind.Data && !status.DataIsHostHole));
                }

                offset += status.LengthBytes;
                if (batch.Count >= (inFlight == 1 ? 1 : BatchRanges) || (offset >= top.SizeBytes && batch.Count > 0))
                {
                    await Parallel.ForEachAsync(batch, new ParallelOptions { MaxDegreeOfParallelism = inFlight, CancellationToken = cancellationToken }, async (range, ct) =>
                    {
                        bool wroteData = await CopyRangeAsync(top, target, range, ct).ConfigureAwait(false);
                        Interlocked.Add(ref wroteData ? ref copiedData : ref copiedZero, range.LengthBytes);
                        writes.Count();
                    }).ConfigureAwait(false);
                    await throttle.WaitAsync(batch.Sum(r => r.LengthBytes), cancellationToken).ConfigureAwait(false);
                    batch.Clear();
                }

                progress?.Report(new ProgressReport("commit", offset, top.SizeBytes));
            }

            dataBytes = copiedData;
            zeroBytes = copiedZero;
            await target.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        bool emptied = false;
        if (!options.Drop && options.BaseFileName is null)
        {
            emptied = await EmptyAsync(options, overlayFormat, writes, cancellationToken).ConfigureAwait(false);
        }

        return new CommitResult(options.FileName, baseFileName, baseDepth, dataBytes, zeroBytes, resizedTo, emptied, started.Elapsed);
    }

    /// <summary>Makes the base read what the overlay's chain reads over one range; returns whether data was written
    /// (false: the range reads as zeros, and the base was told so without writing data).</summary>
    private static async ValueTask<bool> CopyRangeAsync(IImage top, IImage target, CopyRange range, CancellationToken cancellationToken)
    {
        if (range.IsData)
        {
            byte[] buffer = ArrayPool<byte>.Shared.Rent((int)range.LengthBytes);
            try
            {
                Memory<byte> part = buffer.AsMemory(0, (int)range.LengthBytes);
                await top.ReadAsync(range.OffsetBytes, part, cancellationToken).ConfigureAwait(false);
                if (!ZeroScan.IsAllZero(part.Span))
                {
                    await target.WriteAsync(range.OffsetBytes, part, cancellationToken).ConfigureAwait(false);
                    return true;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        await target.WriteZeroesAsync(range.OffsetBytes, range.LengthBytes, BlockZeroFlags.None, cancellationToken).ConfigureAwait(false);
        return false;
    }

    private readonly record struct CopyRange(long OffsetBytes, long LengthBytes, bool IsData);

    /// <summary>Empties the overlay when its format can (QEMU's bdrv_make_empty: qcow2); other formats keep their data,
    /// which now equals the base's, as qemu-img leaves them.</summary>
    private async ValueTask<bool> EmptyAsync(CommitOptions options, string format, WriteCounter writes, CancellationToken cancellationToken)
    {
        await using IImage top = await opener.OpenAsync(
            options.FileName,
            new ImageOpenRequest(format, ReadOnly: false, Cache: options.Cache, OpenBacking: false),
            cancellationToken).ConfigureAwait(false);
        if (top is not IMakeEmpty empty)
        {
            return false;
        }

        await empty.MakeEmptyAsync(cancellationToken).ConfigureAwait(false);
        writes.Count();
        await top.FlushAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>The overlay and its opened backing images, top first.</summary>
    internal static IReadOnlyList<IImage> Chain(IImage top)
    {
        var chain = new List<IImage> { top };
        for (IImage current = top; current is IBackingChain { Backing: IImage backing }; current = backing)
        {
            chain.Add(backing);
        }

        return chain;
    }

    /// <summary>The depth of the image -b names: matched by its path (as given, or resolved against the folder of the
    /// image above it, as QEMU resolves backing names) or by the backing name an image stores for it.</summary>
    private static int FindBase(IReadOnlyList<IImage> chain, CommitOptions options)
    {
        if (options.BaseFileName is not { } wanted)
        {
            return 1;
        }

        for (int depth = 1; depth < chain.Count; depth++)
        {
            string path = Path.GetFullPath(chain[depth].HostFile.Path);
            string? storedName = (chain[depth - 1] as IBackingChain)?.BackingFileName;
            if (path == Path.GetFullPath(wanted)
                || path == Path.GetFullPath(ImageOpener.ResolveBackingPath(chain[0].HostFile.Path, wanted))
                || storedName == wanted)
            {
                return depth;
            }
        }

        throw new BackingFileException($"Did not find '{wanted}' in the backing chain of '{options.FileName}' (chain: {string.Join(" -> ", chain.Select(i => i.HostFile.Path))})", options.FileName);
    }
}

using System.Buffers;
using System.Diagnostics;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats;

namespace ImgTool.Operations.Dd;

/// <summary>imgtool dd's operands and options.</summary>
/// <param name="BlockSizeBytes">bs=: the block size skip= and count= are counted in (default 512, as dd(1) and qemu-img).</param>
/// <param name="Count">count=: blocks to copy after the skipped ones (dd(1)'s meaning), or null for all that remain.</param>
/// <param name="Skip">skip=: blocks of the input to leave out at its start.</param>
public sealed record DdOptions(
    string Input,
    string Output,
    string? InputFormat = null,
    string OutputFormat = "raw",
    long BlockSizeBytes = 512,
    long? Count = null,
    long Skip = 0,
    bool ForceShare = false);

/// <summary>What dd copied.</summary>
/// <param name="BlocksCopied">Whole and partial blocks copied (the last block may be short at the input's end).</param>
public sealed record DdResult(string Input, string Output, string OutputFormat, long BlockSizeBytes, long BlocksCopied, long BytesCopied, TimeSpan Elapsed);

/// <summary>
/// imgtool dd: copies a range of an image, counted in blocks as dd(1) counts them, into a new image of the range's
/// size. Unlike qemu-img 7.2, whose count includes the skipped blocks (`skip=3 count=100` copies 97 there), count is
/// the number of blocks copied after the skipped ones, as in dd(1) and as the qemu-img documentation describes.
/// </summary>
public sealed class DdOperation(ImageOpener opener)
{
    /// <summary>qemu-img's limit on bs (INT_MAX); the copy itself goes in pieces of at most <see cref="ChunkBytes"/>.</summary>
    public const long MaxBlockSizeBytes = int.MaxValue;

    private const int ChunkBytes = 2 << 20;

    public async ValueTask<DdResult> RunAsync(DdOptions options, CancellationToken cancellationToken = default)
    {
        if (options.BlockSizeBytes is < 1 or > MaxBlockSizeBytes)
        {
            throw new InvalidOptionException($"Invalid bs specified. Must be between 1 and {MaxBlockSizeBytes}.");
        }

        if (options.Count < 0 || options.Skip < 0)
        {
            throw new InvalidOptionException("count and skip must not be negative");
        }

        FormatDriver driver = opener.Registry.Get(options.OutputFormat);
        driver.EnsureWritableFormat(options.Output);
        var stopwatch = Stopwatch.StartNew();
        await using IImage source = await opener.OpenAsync(options.Input, new ImageOpenRequest(options.InputFormat, ForceShare: options.ForceShare), cancellationToken).ConfigureAwait(false);
        if (IsSameFile(source.HostFile.Path, options.Output))
        {
            throw new InvalidOptionException("the output is the input; dd into a new file", options.Output);
        }

        long size = source.SizeBytes;
        if (options.Skip > size / options.BlockSizeBytes)
        {
            throw new InvalidOptionException("cannot skip to specified offset", options.Input);
        }

        long start = options.Skip * options.BlockSizeBytes;
        long length = size - start;
        if (options.Count is { } count && count <= length / options.BlockSizeBytes)
        {
            length = count * options.BlockSizeBytes;
        }

        IReadOnlyList<string> related = await ImageFactory.CreateAsync(
            options.Output, driver, new ImageCreateRequest(length, ImageOptions.Empty) { AllowOutsideFiles = opener.AllowOutsideFiles, Secrets = opener.Secrets }, cancellationToken).ConfigureAwait(false);
        try
        {
            await CopyAsync(source, start, length, options.Output, driver, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // A half-written output must not stay behind looking like a good image.
            ImageFactory.RemoveQuietly(options.Output);
            foreach (string file in related)
            {
                ImageFactory.RemoveQuietly(file);
            }

            throw;
        }

        long blocks = (length + options.BlockSizeBytes - 1) / options.BlockSizeBytes;
        return new DdResult(options.Input, options.Output, driver.Name, options.BlockSizeBytes, blocks, length, stopwatch.Elapsed);
    }

    /// <summary>Copies in large pieces (the block size only counts): ranges the source's chain reads as zeros are
    /// not read, and zeros are not written to a new image that reads as zeros already.</summary>
    private async ValueTask CopyAsync(IImage source, long start, long length, string output, FormatDriver driver, CancellationToken cancellationToken)
    {
        await using IImage target = await opener.OpenAsync(output, new ImageOpenRequest(driver.Name, ReadOnly: false, Cache: CacheMode.Unsafe), cancellationToken).ConfigureAwait(false);
        if (target.SizeBytes < length)
        {
            throw new UnsupportedFeatureException($"the {driver.Name} output holds {target.SizeBytes} bytes, fewer than the {length} to copy", output);
        }

        bool targetIsZero = driver.CreatesZeroedImages;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            for (long done = 0; done < length;)
            {
                BlockStatus status = await BackingChainStatus.GetAsync(source, start + done, Math.Min(length - done, 1L << 30), cancellationToken).ConfigureAwait(false);
                int piece = (int)Math.Min(Math.Min(status.LengthBytes, ChunkBytes), length - done);
                bool zero = status.Kind != BlockStatusKind.Data || status.DataIsHostHole;
                Memory<byte> chunk = buffer.AsMemory(0, piece);
                if (zero)
                {
                    if (!targetIsZero)
                    {
                        await target.WriteZeroesAsync(done, piece, BlockZeroFlags.None, cancellationToken).ConfigureAwait(false);
                    }
                }
                else
                {
                    await source.ReadAsync(start + done, chunk, cancellationToken).ConfigureAwait(false);
                    if (!targetIsZero || chunk.Span.IndexOfAnyExcept((byte)0) >= 0)
                    {
                        await target.WriteAsync(done, chunk, cancellationToken).ConfigureAwait(false);
                    }
                }

                done += piece;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        await target.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static bool IsSameFile(string a, string b)
    {
        if (!File.Exists(b))
        {
            return false;
        }

        return Canonical(a) == Canonical(b);

        static string Canonical(string path) =>
            new FileInfo(Path.GetFullPath(path)).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
    }
}

using System.Buffers;
using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Formats;
using ImgTool.Operations.Common;

namespace ImgTool.Operations.Compare;

/// <param name="Strict">-s: fail on a size mismatch or a difference in allocation, not only in content.</param>
/// <param name="Cache">-T src_cache: how both images are opened (qemu-img's default, writeback).</param>
public sealed record CompareOptions(string FileNameA, string FileNameB, string? FormatA = null, string? FormatB = null, bool Strict = false, bool ForceShare = false, CacheMode Cache = CacheMode.Writeback);

public enum CompareOutcome
{
    Identical,
    ContentMismatch,
    AllocationMismatch,
    SizeMismatch,
}

/// <param name="MismatchOffsetBytes">The sector (512-byte) offset qemu-img reports for the first difference.</param>
/// <param name="FirstDifferentByte">The exact first differing byte, when the difference is in content.</param>
/// <param name="SizesDiffer">The images differ in size (a warning unless strict; the extra part was compared with zeros).</param>
public sealed record CompareResult(
    CompareOutcome Outcome,
    long SizeBytesA,
    long SizeBytesB,
    bool SizesDiffer,
    long? MismatchOffsetBytes,
    long? FirstDifferentByte)
{
    public bool Identical => Outcome == CompareOutcome.Identical;
}

/// <summary>imgtool compare: the content of two images, skipping ranges both say are zero.</summary>
public sealed class CompareOperation(ImageOpener opener)
{
    private const int ChunkBytes = 2 << 20;
    private const int SectorBytes = 512;

    public async ValueTask<CompareResult> RunAsync(CompareOptions options, IProgress<ProgressReport>? progress = null, CancellationToken cancellationToken = default)
    {
        await using IImage a = await opener.OpenAsync(options.FileNameA, new ImageOpenRequest(options.FormatA, ForceShare: options.ForceShare, Cache: options.Cache), cancellationToken).ConfigureAwait(false);
        await using IImage b = await opener.OpenAsync(options.FileNameB, new ImageOpenRequest(options.FormatB, ForceShare: options.ForceShare, Cache: options.Cache), cancellationToken).ConfigureAwait(false);

        long common = Math.Min(a.SizeBytes, b.SizeBytes);
        long total = Math.Max(a.SizeBytes, b.SizeBytes);
        bool sizesDiffer = a.SizeBytes != b.SizeBytes;
        CompareResult Result(CompareOutcome outcome, long? offset = null, long? exact = null) =>
            new(outcome, a.SizeBytes, b.SizeBytes, sizesDiffer, offset, exact);

        if (sizesDiffer && options.Strict)
        {
            return Result(CompareOutcome.SizeMismatch);
        }

        byte[] bufferA = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        byte[] bufferB = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            for (long offset = 0; offset < common;)
            {
                long want = Math.Min(ChunkBytes, common - offset);
                BlockStatus sa = await BackingChainStatus.GetAsync(a, offset, want, cancellationToken).ConfigureAwait(false);
                BlockStatus sb = await BackingChainStatus.GetAsync(b, offset, want, cancellationToken).ConfigureAwait(false);
                int length = (int)Math.Min(sa.LengthBytes, sb.LengthBytes);
                bool zeroA = sa.Kind != BlockStatusKind.Data || sa.DataIsHostHole;
                bool zeroB = sb.Kind != BlockStatusKind.Data || sb.DataIsHostHole;
                if (options.Strict && (sa.Kind == BlockStatusKind.Unallocated) != (sb.Kind == BlockStatusKind.Unallocated))
                {
                    return Result(CompareOutcome.AllocationMismatch, offset);
                }

                if (!(zeroA && zeroB))
                {
                    long? difference = await FirstDifferenceAsync(a, b, offset, length, zeroA, zeroB, bufferA, bufferB, cancellationToken).ConfigureAwait(false);
                    if (difference is { } at)
                    {
                        return Result(CompareOutcome.ContentMismatch, at / SectorBytes * SectorBytes, at);
                    }
                }

                offset += length;
                progress?.Report(new ProgressReport("compare", offset, total));
            }

            // The longer image must read as zeros past the end of the shorter one.
            IImage longer = a.SizeBytes > b.SizeBytes ? a : b;
            for (long offset = common; offset < total;)
            {
                BlockStatus status = await BackingChainStatus.GetAsync(longer, offset, Math.Min(ChunkBytes, total - offset), cancellationToken).ConfigureAwait(false);
                int length = (int)status.LengthBytes;
                if (status.Kind == BlockStatusKind.Data && !status.DataIsHostHole)
                {
                    await longer.ReadAsync(offset, bufferA.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                    int nonZero = bufferA.AsSpan(0, length).IndexOfAnyExcept((byte)0);
                    if (nonZero >= 0)
                    {
                        long at = offset + nonZero;
                        return Result(CompareOutcome.ContentMismatch, at / SectorBytes * SectorBytes, at);
                    }
                }

                offset += length;
                progress?.Report(new ProgressReport("compare", offset, total));
            }

            return Result(CompareOutcome.Identical);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bufferA);
            ArrayPool<byte>.Shared.Return(bufferB);
        }
    }

    private static async ValueTask<long?> FirstDifferenceAsync(
        IImage a, IImage b, long offset, int length, bool zeroA, bool zeroB, byte[] bufferA, byte[] bufferB, CancellationToken cancellationToken)
    {
        Memory<byte> ma = bufferA.AsMemory(0, length);
        Memory<byte> mb = bufferB.AsMemory(0, length);
        if (zeroA)
        {
            ma.Span.Clear();
        }
        else
        {
            await a.ReadAsync(offset, ma, cancellationToken).ConfigureAwait(false);
        }

        if (zeroB)
        {
            mb.Span.Clear();
        }
        else
        {
            await b.ReadAsync(offset, mb, cancellationToken).ConfigureAwait(false);
        }

        int mismatch = ma.Span.CommonPrefixLength(mb.Span);
        return mismatch < length ? offset + mismatch : null;
    }
}

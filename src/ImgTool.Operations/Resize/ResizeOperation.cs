using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats;

namespace ImgTool.Operations.Resize;

/// <param name="SizeText">The size as given: absolute ("2G"), or relative to the current size ("+1G", "-512M").</param>
/// <param name="Shrink">--shrink: a smaller size is allowed (qemu-img refuses any shrink without it).</param>
/// <param name="Preallocation">--preallocation: off (default), or falloc / full for raw images.</param>
public sealed record ResizeOptions(
    string FileName,
    string SizeText,
    string? Format = null,
    bool Shrink = false,
    string? Preallocation = null,
    CacheMode Cache = CacheMode.Writeback);

public sealed record ResizeResult(string FileName, string Format, long OldSizeBytes, long NewSizeBytes);

/// <summary>
/// imgtool resize: changes an image's virtual size with qemu-img's rules (a shrink needs --shrink, preallocation only
/// when growing, sizes as qemu-img parses them). A grown range reads as zeros, even where a longer backing file or a
/// partly used last cluster would show old data through (QEMU zeroes the new area too when there is a backing file).
/// </summary>
public sealed class ResizeOperation(ImageOpener opener)
{
    public async ValueTask<ResizeResult> RunAsync(ResizeOptions options, CancellationToken cancellationToken = default)
    {
        string preallocation = options.Preallocation ?? "off";
        if (preallocation is not ("off" or "metadata" or "falloc" or "full"))
        {
            throw new InvalidOptionException($"Invalid preallocation mode: '{preallocation}'");
        }

        (int sign, long amount) = ParseSize(options.SizeText);
        var request = new ImageOpenRequest(options.Format, ReadOnly: false, Cache: options.Cache);
        IImage image = await opener.OpenAsync(options.FileName, request, cancellationToken).ConfigureAwait(false);
        try
        {
            long oldSize = image.SizeBytes;
            long newSize = NewSize(sign, amount, oldSize);
            Validate(options, image, oldSize, newSize, preallocation);
            if (newSize != oldSize)
            {
                await ((IResizable)image).ResizeAsync(newSize, cancellationToken).ConfigureAwait(false);

                // Some drivers (VHD, VHDX, VDI) change only the file; the image is opened again to see the new layout,
                // which also proves that it opens.
                string format = image.FormatName;
                await image.DisposeAsync().ConfigureAwait(false);
                image = null!;
                image = await opener.OpenAsync(options.FileName, request with { Format = format }, cancellationToken).ConfigureAwait(false);
            }

            if (newSize > oldSize)
            {
                if (preallocation is "falloc" or "full")
                {
                    image.HostFile.Preallocate(oldSize, newSize - oldSize, writeZeros: preallocation == "full");
                }
                else
                {
                    await ZeroGrownRangeAsync(image, oldSize, newSize, cancellationToken).ConfigureAwait(false);
                }
            }

            await image.FlushAsync(cancellationToken).ConfigureAwait(false);
            return new ResizeResult(options.FileName, image.FormatName, oldSize, newSize);
        }
        finally
        {
            if (image is not null)
            {
                await image.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static long NewSize(int sign, long amount, long oldSize)
    {
        long newSize = sign switch
        {
            > 0 => amount > long.MaxValue - oldSize ? throw new InvalidOptionException("Image size must be less than 8 EiB!") : oldSize + amount,
            < 0 => oldSize - amount,
            _ => amount,
        };
        return newSize > 0 ? newSize : throw new InvalidOptionException("New image size must be positive");
    }

    /// <summary>qemu-img's refusals, in its order, before anything is written.</summary>
    private static void Validate(ResizeOptions options, IImage image, long oldSize, long newSize, string preallocation)
    {
        if (newSize < oldSize && !options.Shrink)
        {
            throw new InvalidOptionException("Use the --shrink option to perform a shrink operation. (Shrinking deletes all data beyond the new end; make sure there is no important data there.)", options.FileName);
        }

        if (newSize < oldSize && preallocation != "off")
        {
            throw new InvalidOptionException("Preallocation can only be used for growing images", options.FileName);
        }

        if (image is not IResizable)
        {
            throw new UnsupportedFeatureException($"Image format driver does not support resize ({image.FormatName})", options.FileName);
        }

        if (preallocation != "off" && image.FormatName != "raw")
        {
            throw new UnsupportedFeatureException($"preallocation={preallocation} is supported by resize for raw images only", options.FileName);
        }
    }

    /// <summary>qemu-img's size argument: an optional '+' or '-' (relative to the current size), then a size.</summary>
    public static (int Sign, long Bytes) ParseSize(string text)
    {
        int sign = text.StartsWith('+') ? 1 : text.StartsWith('-') ? -1 : 0;
        string magnitude = sign == 0 ? text : text[1..];
        if (!SizeParser.TryParse(magnitude, out long bytes))
        {
            throw new InvalidOptionException($"Invalid image size specified: '{text}'");
        }

        return (sign, bytes);
    }

    /// <summary>Makes [<paramref name="oldSize"/>, <paramref name="newSize"/>) read as zeros where it would not: data
    /// of a longer backing file, or the stale tail of a cluster the old end cut through.</summary>
    private static async ValueTask ZeroGrownRangeAsync(IImage image, long oldSize, long newSize, CancellationToken cancellationToken)
    {
        for (long offset = oldSize; offset < newSize;)
        {
            BlockStatus status = await BackingChainStatus.GetAsync(image, offset, newSize - offset, cancellationToken).ConfigureAwait(false);
            if (status.Kind == BlockStatusKind.Data && !status.DataIsHostHole)
            {
                await image.WriteZeroesAsync(offset, status.LengthBytes, BlockZeroFlags.None, cancellationToken).ConfigureAwait(false);
            }

            offset += status.LengthBytes;
        }
    }
}

namespace ImgTool.Block.Devices;

/// <summary>Block status resolved through a backing chain, as `map` and `convert` need it.</summary>
public static class BackingChainStatus
{
    /// <summary>
    /// The status at <paramref name="offsetBytes"/> of the first layer that describes it. An
    /// unallocated range falls through to the backing device (depth + 1); past the end of a shorter
    /// backing device, or at the bottom of the chain, an unallocated range reads as zeros and is
    /// reported as Unallocated at the depth of the layer that said so (QEMU's block status sets ZERO
    /// there and stops: qemu-img map prints depth 0 for a top layer past its backing file's end).
    /// </summary>
    public static async ValueTask<BlockStatus> GetAsync(IBlockDevice device, long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        int depth = 0;
        IBlockDevice current = device;
        while (true)
        {
            BlockStatus status = await current.GetStatusAsync(offsetBytes, lengthBytes, cancellationToken).ConfigureAwait(false);
            if (status.Kind != BlockStatusKind.Unallocated
                || current is not IBackingChain { Backing: { } backing })
            {
                return status with { Depth = depth };
            }

            if (offsetBytes >= backing.SizeBytes)
            {
                // A backing file shorter than its overlay reads as zeros past its end; the overlay answers.
                return status with { Depth = depth };
            }

            lengthBytes = Math.Min(status.LengthBytes, backing.SizeBytes - offsetBytes);
            current = backing;
            depth++;
        }
    }
}

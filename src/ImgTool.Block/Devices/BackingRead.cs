namespace ImgTool.Block.Devices;

/// <summary>How every delta format reads a range it does not hold.</summary>
public static class BackingRead
{
    /// <summary>
    /// Reads the range from the backing device; what lies past its end (a backing file shorter than its
    /// overlay), or everything when there is no backing device, reads as zeros.
    /// </summary>
    public static async ValueTask ReadOrZeroAsync(IBlockDevice? backing, long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int available = backing is null ? 0 : (int)Math.Clamp(backing.SizeBytes - offsetBytes, 0, buffer.Length);
        if (available > 0)
        {
            await backing!.ReadAsync(offsetBytes, buffer[..available], cancellationToken).ConfigureAwait(false);
        }

        buffer.Span[available..].Clear();
    }
}

namespace ImgTool.Block.Devices;

/// <summary>Vectorized zero detection for buffers, in granules (qemu-img convert -S).</summary>
public static class ZeroScan
{
    public static bool IsAllZero(ReadOnlySpan<byte> data) => data.IndexOfAnyExcept((byte)0) < 0;

    /// <summary>
    /// Length of the run at the start of <paramref name="data"/> that is all zero granules (when
    /// <paramref name="zero"/>) or holds at least one non-zero byte per granule (when not). Granules are
    /// aligned to <paramref name="granuleBytes"/> relative to <paramref name="baseOffset"/>, the
    /// position of data[0] on the disk, so runs line up with the target's clusters.
    /// </summary>
    public static int RunLength(ReadOnlySpan<byte> data, long baseOffset, int granuleBytes, out bool zero)
    {
        int first = FirstGranule(baseOffset, granuleBytes, data.Length);
        zero = IsAllZero(data[..first]);
        int position = first;
        while (position < data.Length)
        {
            int length = Math.Min(granuleBytes, data.Length - position);
            if (IsAllZero(data.Slice(position, length)) != zero)
            {
                break;
            }

            position += length;
        }

        return position;
    }

    private static int FirstGranule(long baseOffset, int granuleBytes, int available)
    {
        int misalignment = (int)(baseOffset % granuleBytes);
        return Math.Min(available, granuleBytes - misalignment);
    }
}

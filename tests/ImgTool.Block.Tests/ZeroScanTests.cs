using FsCheck.Xunit;
using ImgTool.Block.Devices;

namespace ImgTool.Block.Tests;

public class ZeroScanTests
{
    /// <summary>Runs cover the buffer exactly, alternate, and agree with a byte-by-byte model of each granule.</summary>
    [Property(MaxTest = 200)]
    public bool Runs_partition_the_buffer_into_zero_and_data_granules(byte[] pattern, byte shift, bool sparse)
    {
        const int Granule = 16;
        int length = pattern.Length * 4;
        byte[] data = new byte[length];
        for (int i = 0; i < pattern.Length; i++)
        {
            // Mostly zero granules when sparse, so both kinds of runs occur.
            if (!sparse || pattern[i] % 3 == 0)
            {
                data[i * 4] = pattern[i];
            }
        }

        long baseOffset = shift % Granule;
        int position = 0;
        bool? previous = null;
        while (position < length)
        {
            int run = ZeroScan.RunLength(data.AsSpan(position), baseOffset + position, Granule, out bool zero);
            if (run <= 0 || previous == zero)
            {
                return false;
            }

            // Every granule inside the run must match its kind.
            for (int g = position; g < position + run;)
            {
                int granuleEnd = (int)Math.Min(position + run, ((baseOffset + g) / Granule + 1) * Granule - baseOffset);
                bool allZero = data.AsSpan(g, granuleEnd - g).IndexOfAnyExcept((byte)0) < 0;
                if (allZero != zero)
                {
                    return false;
                }

                g = granuleEnd;
            }

            previous = zero;
            position += run;
        }

        return position == length;
    }
}

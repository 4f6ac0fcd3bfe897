using FsCheck.Xunit;
using ImgTool.Formats.Qcow2;

namespace ImgTool.Formats.Tests.Qcow2;

/// <summary>The bit order of qcow2 bitmap data: bit n is bit (n % 8), least significant first, of byte n / 8.</summary>
public sealed class Qcow2DirtyBitmapBitsTests
{
    [Property(MaxTest = 300)]
    public bool SetBits_sets_exactly_the_range_on_top_of_what_was_set(ushort start, ushort count, int seed)
    {
        const int Bytes = 4096;
        long first = start % (Bytes * 8);
        long n = Math.Min(count, (Bytes * 8) - first);
        byte[] data = new byte[Bytes];
        new Random(seed).NextBytes(data.AsSpan(0, 64));
        byte[] expected = (byte[])data.Clone();
        for (long bit = first; bit < first + n; bit++)
        {
            expected[bit / 8] |= (byte)(1 << (int)(bit % 8));
        }

        Qcow2DirtyBitmaps.SetBits(data, first, n);
        return data.AsSpan().SequenceEqual(expected);
    }

    [Fact]
    public void The_first_granule_is_the_lowest_bit_of_the_first_byte()
    {
        byte[] data = new byte[2];
        Qcow2DirtyBitmaps.SetBits(data, 0, 1);
        Qcow2DirtyBitmaps.SetBits(data, 9, 2);
        Assert.Equal([0x01, 0x06], data);
    }
}

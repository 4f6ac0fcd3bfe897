using FsCheck.Xunit;
using ImgTool.Block.Devices;

namespace ImgTool.Block.Tests;

public class CopyOnWriteOverlayTests
{
    private const int DiskBytes = 64 * 1024;

    /// <summary>
    /// Random writes and write-zeroes (unaligned, some crossing granules) through the overlay read
    /// back exactly as a byte-array model says, and the device underneath never changes.
    /// </summary>
    [Property(MaxTest = 100)]
    public bool Reads_follow_the_model_and_the_lower_device_is_untouched(int[] operations, int seed)
    {
        byte[] original = new byte[DiskBytes];
        new Random(seed).NextBytes(original);
        var lower = new ArrayDevice((byte[])original.Clone());
        var overlay = new CopyOnWriteOverlay(lower);
        byte[] model = (byte[])original.Clone();
        var random = new Random(seed ^ 0x5eed);

        foreach (int op in operations.Take(40))
        {
            int offset = Math.Abs(op % DiskBytes);
            int length = Math.Min(1 + random.Next(3 * CopyOnWriteOverlay.GranuleBytes), DiskBytes - offset);
            if ((op & 1) == 0)
            {
                byte[] data = new byte[length];
                random.NextBytes(data);
                overlay.WriteAsync(offset, data).AsTask().GetAwaiter().GetResult();
                data.CopyTo(model, offset);
            }
            else
            {
                overlay.WriteZeroesAsync(offset, length, BlockZeroFlags.None).AsTask().GetAwaiter().GetResult();
                Array.Clear(model, offset, length);
            }
        }

        byte[] back = new byte[DiskBytes];
        overlay.ReadAsync(0, back).AsTask().GetAwaiter().GetResult();
        return back.AsSpan().SequenceEqual(model) && lower.Content.AsSpan().SequenceEqual(original) && lower.Writes == 0;
    }

    [Fact]
    public async Task Status_reports_overlay_data_and_zeros_and_falls_through_elsewhere()
    {
        var overlay = new CopyOnWriteOverlay(new ArrayDevice(new byte[DiskBytes]));
        await overlay.WriteAsync(4096, new byte[100]);
        await overlay.WriteZeroesAsync(16384, 8192, BlockZeroFlags.None);

        BlockStatus first = await overlay.GetStatusAsync(0, DiskBytes);
        Assert.Equal((BlockStatusKind.Data, 4096L, 0), (first.Kind, first.LengthBytes, first.Depth));
        BlockStatus written = await overlay.GetStatusAsync(4096, DiskBytes - 4096);
        Assert.Equal((BlockStatusKind.Data, 4096L), (written.Kind, written.LengthBytes));
        BlockStatus zero = await overlay.GetStatusAsync(16384, DiskBytes - 16384);
        Assert.Equal((BlockStatusKind.Zero, 8192L), (zero.Kind, zero.LengthBytes));
    }
}

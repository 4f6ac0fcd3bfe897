using FsCheck.Xunit;
using ImgTool.Block.Devices;
using ImgTool.Operations.Convert;

namespace ImgTool.Operations.Tests;

public class ConvertPipelineTests
{
    /// <summary>
    /// A compressed convert of any layout (text-like, random, zero, odd sizes) reproduces the source,
    /// compresses what compresses, stores what does not, skips zero units, and hands units to the
    /// device one at a time in increasing order even with many workers.
    /// </summary>
    [Property(MaxTest = 40)]
    public bool Compressed_convert_writes_units_in_order_and_reproduces_the_source(byte[] layout, bool bigUnits, byte parallel, int tail)
    {
        int unit = bigUnits ? 64 * 1024 : 4096;
        long size = (layout.Length * 16 * 1024L) + Math.Abs(tail % 5000) + 1;
        byte[] content = new byte[size];
        var random = new Random(layout.Length);
        for (int i = 0; i < layout.Length; i++)
        {
            Span<byte> piece = content.AsSpan(i * 16 * 1024, 16 * 1024);
            switch (layout[i] % 4)
            {
                case 0:
                    random.NextBytes(piece); // incompressible
                    break;
                case 1:
                    piece.Fill((byte)('a' + (layout[i] % 26))); // compressible
                    break;
                default:
                    break; // zeros
            }
        }

        var target = new ModelCompressedTarget(size, unit);
        var pipeline = new ConvertPipeline(new ModelSource(content), target, target, 4096, targetIsZero: true, 1 + (parallel % 8), outOfOrder: true, progress: null);
        pipeline.RunAsync(CancellationToken.None).GetAwaiter().GetResult();
        return target.Violations.Count == 0 && target.Content.AsSpan().SequenceEqual(content);
    }

    [Fact]
    public async Task Compressible_units_are_compressed_and_random_ones_stored()
    {
        byte[] content = new byte[256 * 1024];
        content.AsSpan(0, 64 * 1024).Fill((byte)'x');
        new Random(3).NextBytes(content.AsSpan(128 * 1024, 64 * 1024));
        var target = new ModelCompressedTarget(content.Length, 64 * 1024);
        await new ConvertPipeline(new ModelSource(content), target, target, 4096, true, 4, false, null).RunAsync(CancellationToken.None);
        Assert.Empty(target.Violations);
        Assert.Equal((1, 1), (target.CompressedUnits, target.StoredUnits));
        Assert.Equal(content, target.Content);
    }

    [Fact]
    public async Task Concatenated_sources_read_across_their_boundaries()
    {
        byte[] a = new byte[5000];
        byte[] b = new byte[70_000];
        new Random(1).NextBytes(a);
        new Random(2).NextBytes(b.AsSpan(60_000));
        var both = new ConcatenatedDevice([new ModelSource(a), new ModelSource([]), new ModelSource(b)]);
        Assert.Equal(75_000, both.SizeBytes);

        byte[] read = new byte[75_000];
        await both.ReadAsync(0, read);
        Assert.Equal(a.Concat(b).ToArray(), read);

        BlockStatus first = await both.GetStatusAsync(0, 75_000);
        Assert.Equal((BlockStatusKind.Data, 5000L), (first.Kind, first.LengthBytes));
        BlockStatus hole = await both.GetStatusAsync(5000, 70_000);
        Assert.Equal(BlockStatusKind.Zero, hole.Kind);
        Assert.Equal(57_344, hole.LengthBytes); // up to the granule holding b's data
    }
}

using FsCheck;
using FsCheck.Fluent;
using ImgTool.Block.Devices;
using ImgTool.Formats.Tests.Qcow2;
using static ImgTool.Formats.Tests.Qed.QedTestImages;

namespace ImgTool.Formats.Tests.Qed;

/// <summary>Random writes, zero writes and reopens against a byte-array model, with and without a backing image (raw or
/// qcow2): afterwards the image reads as the model and checks clean.</summary>
public sealed class QedPropertyTests
{
    public static TheoryData<string, string> Variants => new()
    {
        { "", "none" },
        { "cluster_size=4k,table_size=1", "none" },
        { "cluster_size=4k,table_size=2", "raw" },
        { "cluster_size=64k,table_size=16", "qcow2" },
        { "cluster_size=1M,table_size=1", "raw" },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Random_operations_match_the_model(string options, string backing)
    {
        Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue)), seed => RunAsync(options, backing, seed).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(12));
    }

    private static async Task<bool> RunAsync(string options, string backing, int seed)
    {
        var random = new Random(seed);
        long size = (3L << 20) + (512 * random.Next(0, 64));
        byte[] model = new byte[size];
        Func<string, string?, CancellationToken, ValueTask<IImage>>? openBacking = null;
        if (backing != "none")
        {
            // The backing image may be shorter than the overlay: past its end the overlay reads zeros.
            long backingSize = size - (512 * random.Next(0, 2048));
            (byte[] data, openBacking) = backing == "raw" ? await RawBackingAsync(backingSize, seed) : await Qcow2BackingAsync(backingSize, seed);
            data.CopyTo(model, 0);
        }

        SharedHostFile file = await CreateInMemoryAsync(size, options, backing == "none" ? null : "base", backing == "none" ? null : backing);
        IImage image = await OpenAsync(file, backing: openBacking);
        try
        {
            long cluster = image.Details.ClusterSizeBytes!.Value;
            for (int step = 0; step < 40; step++)
            {
                int op = random.Next(100);
                long offset = random.NextInt64(size);
                int length = (int)Math.Min(size - offset, random.Next(1, 4) switch
                {
                    1 => random.Next(1, 5000),
                    2 => random.Next(1, (int)cluster * 3),
                    _ => random.Next(1, 300_000),
                });
                if (op < 55)
                {
                    byte[] data = new byte[length];
                    random.NextBytes(data);
                    data.CopyTo(model, offset);
                    await image.WriteAsync(offset, data);
                }
                else if (op < 80)
                {
                    if (random.Next(2) == 0)
                    {
                        // Cluster-aligned, so zero clusters are made.
                        offset = offset / cluster * cluster;
                        length = (int)Math.Min(size - offset, cluster * random.Next(1, 4));
                    }

                    Array.Clear(model, (int)offset, length);
                    await image.WriteZeroesAsync(offset, length, random.Next(2) == 0 ? BlockZeroFlags.None : BlockZeroFlags.MayUnmap);
                }
                else if (op < 90)
                {
                    byte[] read = new byte[length];
                    await image.ReadAsync(offset, read);
                    Assert.Equal(model.AsSpan((int)offset, length).ToArray(), read);
                }
                else
                {
                    await image.DisposeAsync();
                    image = await OpenAsync(file, backing: openBacking);
                }
            }

            Assert.Equal(model, await ReadAllAsync(image));
            CheckReport report = await ((ICheckable)image).CheckAsync(CheckRepair.None);
            Assert.True(report.Corruptions == 0 && report.Leaks == 0 && report.CheckErrors == 0, $"seed {seed}: {report.Corruptions} corruptions, {report.Leaks} leaks");
        }
        finally
        {
            await image.DisposeAsync();
        }

        return true;
    }
}

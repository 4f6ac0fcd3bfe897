using FsCheck;
using FsCheck.Fluent;
using ImgTool.Block.Devices;
using static ImgTool.Formats.Tests.Qcow2.Qcow2TestImages;

namespace ImgTool.Formats.Tests.Qcow2;

/// <summary>Random sequences of writes, write-zeroes, discards, compressed writes, snapshot create/apply/delete and reopens against an
/// in-memory model: afterwards the image reads as the model and checks clean.</summary>
public sealed class Qcow2PropertyTests
{
    public static TheoryData<string> Variants =>
    [
        "",
        "compat=0.10",
        "cluster_size=512",
        "cluster_size=4k,refcount_bits=1",
        "cluster_size=4k,refcount_bits=64",
        "cluster_size=16k,extended_l2=on",
        "cluster_size=64k,extended_l2=on,compression_type=zstd",
        "compression_type=zstd,lazy_refcounts=on",
        "cluster_size=2M",
    ];

    [Theory]
    [MemberData(nameof(Variants))]
    public void Random_operations_match_the_model(string options)
    {
        Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue)), seed => RunAsync(options, seed).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(12));
    }

    private static async Task<bool> RunAsync(string options, int seed)
    {
        var random = new Random(seed);
        long size = (3L << 20) + (512 * random.Next(0, 64));
        SharedHostFile file = await CreateInMemoryAsync(size, options);
        byte[] model = new byte[size];
        IImage image = await OpenAsync(file);
        var snapshots = new Dictionary<string, byte[]>();
        bool snapshotsPossible = !options.Contains("refcount_bits=1", StringComparison.Ordinal);
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
                if (op < 50)
                {
                    byte[] data = new byte[length];
                    random.NextBytes(data);
                    if (random.Next(3) == 0)
                    {
                        Array.Fill(data, (byte)random.Next(256));
                    }

                    await ModelOperations.WriteAsync(image, model, offset, data);
                }
                else if (op < 65)
                {
                    await ModelOperations.WriteZeroesAsync(image, model, offset, length, random.Next(2) == 0 ? BlockZeroFlags.None : BlockZeroFlags.MayUnmap);
                }
                else if (op < 75)
                {
                    // No backing file: discarded whole clusters read as zeros, partial ones keep their data.
                    await ModelOperations.DiscardAsync(image, model, offset, length, cluster);
                }
                else if (op < 85 && image is ICompressedWrites compressed)
                {
                    long at = offset / cluster * cluster;
                    byte[] unit = new byte[cluster];
                    Array.Fill(unit, (byte)random.Next(256), 0, random.Next((int)cluster));
                    byte[] packed = new byte[compressed.MaxCompressedBytes];
                    int n = compressed.Compress(unit, packed);
                    if (n < 0)
                    {
                        await compressed.WriteCompressedAsync(at, unit, false);
                    }
                    else
                    {
                        await compressed.WriteCompressedAsync(at, packed.AsMemory(0, n), true);
                    }

                    unit.AsSpan(0, (int)Math.Min(cluster, size - at)).CopyTo(model.AsSpan((int)at));
                }
                else if (op < 93 && snapshotsPossible)
                {
                    var snapshotting = (ISnapshots)image;
                    int which = random.Next(3);
                    string name = $"s{random.Next(4)}";
                    if (which == 0 || snapshots.Count == 0)
                    {
                        await snapshotting.CreateSnapshotAsync(name, DateTimeOffset.UnixEpoch);
                        snapshots[name] = (byte[])model.Clone(); // qemu allows duplicate names; the model keeps the newest, found by name last
                        if ((await snapshotting.ListSnapshotsAsync()).Count(s => s.Name == name) > 1)
                        {
                            // Keep names unique in the model: delete the older one by its ID.
                            string oldId = (await snapshotting.ListSnapshotsAsync()).First(s => s.Name == name).Id;
                            await snapshotting.DeleteSnapshotAsync(oldId);
                        }
                    }
                    else
                    {
                        string existing = snapshots.Keys.ElementAt(random.Next(snapshots.Count));
                        if (which == 1)
                        {
                            await snapshotting.ApplySnapshotAsync(existing);
                            model = (byte[])snapshots[existing].Clone();
                        }
                        else
                        {
                            await snapshotting.DeleteSnapshotAsync(existing);
                            snapshots.Remove(existing);
                        }
                    }
                }
                else
                {
                    await image.DisposeAsync();
                    image = await OpenAsync(file);
                }
            }

            byte[] back = await ReadAllAsync(image);
            Assert.True(model.AsSpan().SequenceEqual(back), $"content differs at {model.AsSpan().CommonPrefixLength(back)} (seed {seed})");
            await AssertCleanAsync(image);
            await AssertQemuCleanAsync(image, file);
            foreach ((string name, byte[] content) in snapshots)
            {
                // Every snapshot still holds what it held: revert to it and compare.
                await ((ISnapshots)image).ApplySnapshotAsync(name);
                byte[] snapshot = await ReadAllAsync(image);
                Assert.True(content.AsSpan().SequenceEqual(snapshot), $"snapshot {name} differs at {content.AsSpan().CommonPrefixLength(snapshot)} (seed {seed})");
            }

            await AssertCleanAsync(image);
            return true;
        }
        finally
        {
            await image.DisposeAsync();
        }
    }
}

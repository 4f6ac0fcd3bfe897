using System.Text.Json;
using ImgTool.Block.Devices;
using ImgTool.Formats;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>What the qcow2 interop tests do over and over: check with both tools, write through both.</summary>
internal static class Qcow2Interop
{
    private const long MiB = 1 << 20;
    private static readonly ImageOpener Opener = new(FormatRegistry.Default);

    public static async Task AssertChecksAgreeAsync(string image)
    {
        RunResult theirs = await QemuImg("check", "--output=json", image);
        RunResult ours = await Imgtool("check", "--output=json", image);
        Assert.True(theirs.ExitCode == ours.ExitCode, $"qemu-img: {theirs}\nimgtool: {ours}");
        using JsonDocument theirJson = JsonDocument.Parse(theirs.Out);
        using JsonDocument ourJson = JsonDocument.Parse(ours.Out);
        foreach (string field in new[] { "check-errors", "leaks", "corruptions", "image-end-offset", "total-clusters", "allocated-clusters", "fragmented-clusters", "compressed-clusters" })
        {
            bool theyHave = theirJson.RootElement.TryGetProperty(field, out JsonElement theirValue);
            bool weHave = ourJson.RootElement.TryGetProperty(field, out JsonElement ourValue);
            Assert.True(theyHave == weHave, $"{field}: qemu-img {theirs.Out}\nimgtool {ours.Out}");
            if (theyHave)
            {
                Assert.True(theirValue.ToString() == ourValue.ToString(), $"{field}: qemu-img {theirs.Out}\nimgtool {ours.Out}");
            }
        }
    }

    /// <summary>imgtool info shows the format-specific part (bitmaps included) exactly as qemu-img info does.</summary>
    public static async Task AssertInfoAgreesAsync(string image)
    {
        using JsonDocument theirs = JsonDocument.Parse((await QemuImg("info", "--output=json", image)).Out);
        using JsonDocument mine = JsonDocument.Parse((await Imgtool("info", "--output=json", image)).Out);
        Assert.Equal(theirs.RootElement.GetProperty("format-specific").ToString(), mine.RootElement.GetProperty("format-specific").ToString());
    }

    public static async Task AssertQemuCleanAsync(string image)
    {
        RunResult check = await QemuImg("check", image);
        Assert.True(check.ExitCode == 0, check.ToString());
    }

    public static async Task QemuIo(string image, params string[] commands)
    {
        var args = new List<string> { "-f", "qcow2" };
        foreach (string command in commands)
        {
            args.Add("-c");
            args.Add(command);
        }

        args.Add(image);
        RunResult result = await Qemu("qemu-io", [.. args]);
        Assert.True(result.ExitCode == 0 && !result.Out.Contains("error", StringComparison.OrdinalIgnoreCase), result.ToString());
    }

    /// <summary>Seeded writes, zero writes, discards and compressed clusters through imgtool's library,
    /// mirrored into a raw model file.</summary>
    public static async Task RandomWritesAsync(string image, string modelPath, long size, int seed, bool backing, bool compressed = true)
    {
        var random = new Random(seed);
        byte[] model = File.Exists(modelPath) ? await File.ReadAllBytesAsync(modelPath) : new byte[size];
        Array.Resize(ref model, (int)size);
        await using (IImage device = await Opener.OpenAsync(image, new ImageOpenRequest("qcow2", ReadOnly: false)))
        {
            long cluster = device.Details.ClusterSizeBytes!.Value;
            for (int step = 0; step < 60; step++)
            {
                int op = random.Next(100);
                long offset = random.NextInt64(size);
                int length = (int)Math.Min(size - offset, random.Next(3) switch
                {
                    0 => random.Next(1, 5000),
                    1 => random.Next(1, (int)Math.Min(cluster * 3, 4 * MiB)),
                    _ => random.Next(1, 600_000),
                });
                if (op < 55)
                {
                    byte[] data = new byte[length];
                    random.NextBytes(data);
                    await ModelOperations.WriteAsync(device, model, offset, data);
                }
                else if (op < 70)
                {
                    await ModelOperations.WriteZeroesAsync(device, model, offset, length, BlockZeroFlags.MayUnmap);
                }
                else if (op < 80 && !backing)
                {
                    await ModelOperations.DiscardAsync(device, model, offset, length, cluster);
                }
                else if (compressed && device is ICompressedWrites packer)
                {
                    long at = offset / cluster * cluster;
                    byte[] unit = new byte[cluster];
                    Array.Fill(unit, (byte)random.Next(1, 256), 0, random.Next(1, (int)cluster));
                    byte[] packed = new byte[packer.MaxCompressedBytes];
                    int n = packer.Compress(unit, packed);
                    await packer.WriteCompressedAsync(at, n < 0 ? unit : packed.AsMemory(0, n), n >= 0);
                    unit.AsSpan(0, (int)Math.Min(cluster, size - at)).CopyTo(model.AsSpan((int)at));
                }
            }

            await device.FlushAsync();
        }

        await File.WriteAllBytesAsync(modelPath, model);
    }
}

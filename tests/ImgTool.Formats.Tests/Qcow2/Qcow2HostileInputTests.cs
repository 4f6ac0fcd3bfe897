using FsCheck;
using FsCheck.Fluent;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using static ImgTool.Formats.Tests.Qcow2.Qcow2TestImages;

namespace ImgTool.Formats.Tests.Qcow2;

/// <summary>Damaged metadata never crashes, hangs or allocates without bound: every failure is an ImgToolException.</summary>
public sealed class Qcow2HostileInputTests
{
    [Theory]
    [InlineData("")]
    [InlineData("compat=0.10,cluster_size=4k")]
    [InlineData("extended_l2=on,cluster_size=16k,refcount_bits=1")]
    public void Random_damage_to_metadata_gives_typed_errors(string options)
    {
        Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue)), seed => RunAsync(options, seed).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(60));
    }

    private static async Task<bool> RunAsync(string options, int seed)
    {
        var random = new Random(seed);
        SharedHostFile file = await CreateInMemoryAsync(4 << 20, options);
        await using (IImage writer = await OpenAsync(file))
        {
            byte[] data = new byte[300_000];
            random.NextBytes(data);
            await writer.WriteAsync(random.NextInt64(1 << 20), data);
            if (writer is ICompressedWrites compressed)
            {
                byte[] unit = new byte[compressed.CompressionUnitBytes];
                byte[] packed = new byte[compressed.MaxCompressedBytes];
                int n = compressed.Compress(unit, packed);
                await compressed.WriteCompressedAsync(2 << 20, packed.AsMemory(0, n), true);
            }
        }

        // Damage: flip bytes in the header cluster and in the metadata clusters after it.
        long metadataEnd = Math.Min(file.Length, 6 * 65536);
        for (int i = 0, damage = random.Next(1, 8); i < damage; i++)
        {
            long at = random.Next(3) == 0 ? random.Next(0, 112) : random.NextInt64(metadataEnd);
            byte[] one = [(byte)random.Next(256)];
            await file.WriteAsync(at, one);
        }

        try
        {
            await using IImage image = await OpenAsync(file, readOnly: true);
            byte[] buffer = new byte[256 * 1024];
            for (long offset = 0; offset < image.SizeBytes && offset < 8L << 20; offset += buffer.Length)
            {
                int length = (int)Math.Min(buffer.Length, image.SizeBytes - offset);
                await image.ReadAsync(offset, buffer.AsMemory(0, length));
                _ = await image.GetStatusAsync(offset, length);
            }

            _ = await ((ICheckable)image).CheckAsync(CheckRepair.None);
        }
        catch (ImgToolException)
        {
            // A clear, typed refusal is the right answer to damaged metadata.
        }

        return true;
    }

    [Fact]
    public async Task A_file_that_is_only_a_magic_number_is_refused()
    {
        var file = new MemoryHostFile("tiny.qcow2");
        await file.WriteAsync(0, new byte[] { 0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3 });
        await Assert.ThrowsAnyAsync<ImgToolException>(async () => await OpenAsync(file));
    }
}

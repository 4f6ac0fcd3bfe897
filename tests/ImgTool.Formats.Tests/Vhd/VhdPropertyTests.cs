using FsCheck.Xunit;
using ImgTool.Block.Devices;
using ImgTool.Block.Options;
using ImgTool.Formats.Vhd;

namespace ImgTool.Formats.Tests.Vhd;

/// <summary>Random writes, zeroes and discards against an in-memory model, then a reopen and a full compare.</summary>
public sealed class VhdPropertyTests : IDisposable
{
    private const int DiskBytes = 9 << 20; // five 2 MiB blocks, the last one partial
    private readonly TempDir _dir = new();
    private readonly ImageOpener _opener = new(FormatRegistry.Default);

    public void Dispose() => _dir.Dispose();

    [Property(MaxTest = 30)]
    public bool Dynamic_disk_matches_the_model(int[] ops, bool fixedDisk) =>
        Run(ops, fixedDisk ? "subformat=fixed,force_size=on" : "force_size=on", differencing: false).GetAwaiter().GetResult();

    [Property(MaxTest = 20)]
    public bool Differencing_disk_matches_the_model(int[] ops) =>
        Run(ops, "force_size=on", differencing: true).GetAwaiter().GetResult();

    private async Task<bool> Run(int[] ops, string options, bool differencing)
    {
        string id = Guid.NewGuid().ToString("N");
        string path = _dir.File($"{id}.vhd");
        byte[] model = new byte[DiskBytes];
        if (differencing)
        {
            string parent = _dir.File($"{id}-base.vhd");
            await ImageFactory.CreateAsync(parent, VhdFormat.Instance, new ImageCreateRequest(DiskBytes, ImageOptions.Parse([options])));
            await using (IImage p = await _opener.OpenAsync(parent, new ImageOpenRequest(ReadOnly: false)))
            {
                new Random(ops.Length).NextBytes(model.AsSpan(0, 5 << 20));
                await p.WriteAsync(0, model.AsMemory(0, 5 << 20));
            }

            await ImageFactory.CreateAsync(path, VhdFormat.Instance, new ImageCreateRequest(DiskBytes, ImageOptions.Empty, $"{id}-base.vhd", "vpc"));
        }
        else
        {
            await ImageFactory.CreateAsync(path, VhdFormat.Instance, new ImageCreateRequest(DiskBytes, ImageOptions.Parse([options])));
        }

        var random = new Random(ops.Sum(o => o & 0xffff));
        await using (IImage image = await _opener.OpenAsync(path, new ImageOpenRequest(ReadOnly: false)))
        {
            foreach (int op in ops.Take(40))
            {
                long offset = (long)(uint)op % DiskBytes;
                int length = (int)Math.Min(DiskBytes - offset, 1 + random.Next(3 << 20 >> (random.Next(4) * 3)));
                switch ((uint)op % 3)
                {
                    case 0:
                    case 1:
                        byte[] data = new byte[length];
                        random.NextBytes(data);
                        await image.WriteAsync(offset, data);
                        data.CopyTo(model, offset);
                        break;
                    default:
                        await image.WriteZeroesAsync(offset, length, random.Next(2) == 0 ? BlockZeroFlags.MayUnmap : BlockZeroFlags.None);
                        Array.Clear(model, (int)offset, length);
                        break;
                }
            }
        }

        await using IImage reopened = await _opener.OpenAsync(path, new ImageOpenRequest());
        byte[] back = new byte[DiskBytes];
        await reopened.ReadAsync(0, back);
        long corruptions = (await ((ICheckable)reopened).CheckAsync(CheckRepair.None)).Corruptions;
        return reopened.SizeBytes == DiskBytes && back.AsSpan().SequenceEqual(model) && corruptions == 0;
    }
}

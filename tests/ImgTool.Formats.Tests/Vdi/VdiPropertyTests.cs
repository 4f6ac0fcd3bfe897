using FsCheck.Xunit;
using ImgTool.Block.Devices;
using ImgTool.Block.Options;
using ImgTool.Formats.Vdi;

namespace ImgTool.Formats.Tests.Vdi;

/// <summary>Random writes and zeroes through the driver against a byte-array model, then a reopen, a full compare and a check.</summary>
public sealed class VdiPropertyTests : IDisposable
{
    private const int DiskBytes = (5 << 20) + 3072; // six 1 MiB blocks, the last one partial
    private readonly TempDir _dir = new();
    private readonly ImageOpener _opener = new(FormatRegistry.Default);

    public void Dispose() => _dir.Dispose();

    [Property(MaxTest = 30)]
    public bool Dynamic_and_static_images_match_the_model(int[] ops, bool isStatic) =>
        Run(ops, isStatic ? "static=on" : "static=off", differencing: false).GetAwaiter().GetResult();

    [Property(MaxTest = 20)]
    public bool Differencing_images_match_the_model(int[] ops) =>
        Run(ops, "", differencing: true).GetAwaiter().GetResult();

    private async Task<bool> Run(int[] ops, string options, bool differencing)
    {
        string id = Guid.NewGuid().ToString("N");
        Directory.CreateDirectory(_dir.File(id));
        string path = _dir.File($"{id}/top.vdi");
        byte[] model = new byte[DiskBytes];
        if (differencing)
        {
            string parent = _dir.File($"{id}/base.vdi");
            await ImageFactory.CreateAsync(parent, VdiFormat.Instance, new ImageCreateRequest(DiskBytes, ImageOptions.Empty));
            await using (IImage p = await _opener.OpenAsync(parent, new ImageOpenRequest(ReadOnly: false)))
            {
                new Random(ops.Length).NextBytes(model.AsSpan(0, 3 << 20));
                await p.WriteAsync(0, model.AsMemory(0, 3 << 20));
            }

            await ImageFactory.CreateAsync(path, VdiFormat.Instance, new ImageCreateRequest(DiskBytes, ImageOptions.Empty, "base.vdi", "vdi"));
        }
        else
        {
            await ImageFactory.CreateAsync(path, VdiFormat.Instance, new ImageCreateRequest(DiskBytes, ImageOptions.Parse([options])));
        }

        var random = new Random(ops.Sum(o => o & 0xffff));
        await using (IImage image = await _opener.OpenAsync(path, new ImageOpenRequest(ReadOnly: false)))
        {
            foreach (int op in ops.Take(40))
            {
                long offset = (long)(uint)op % DiskBytes;
                int length = (int)Math.Min(DiskBytes - offset, 1 + random.Next(3 << 20 >> (random.Next(4) * 3)));
                switch ((uint)op % 4)
                {
                    case 0:
                    case 1:
                        byte[] data = new byte[length];
                        random.NextBytes(data);
                        await image.WriteAsync(offset, data);
                        data.CopyTo(model, offset);
                        break;
                    case 2:
                        await image.WriteAsync(offset, new byte[length]); // zeros written as data
                        Array.Clear(model, (int)offset, length);
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

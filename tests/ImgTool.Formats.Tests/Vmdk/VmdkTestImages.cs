using ImgTool.Block.Devices;
using ImgTool.Block.Options;
using ImgTool.Formats.Vmdk;

namespace ImgTool.Formats.Tests.Vmdk;

/// <summary>Creates and opens VMDKs on the real file system (extent files need a folder).</summary>
internal static class VmdkTestImages
{
    public const int MiB = 1 << 20;
    public const int Grain = 64 * 1024;

    public static ImageOpener Opener { get; } = new(FormatRegistry.Default);

    public static async Task CreateAsync(string path, long size, string options = "", string? backing = null)
    {
        ImageOptions parsed = options.Length == 0 ? ImageOptions.Empty : ImageOptions.Parse([options]);
        await ImageFactory.CreateAsync(path, VmdkFormat.Instance, new ImageCreateRequest(size, parsed, backing, backing is null ? null : "vmdk"));
    }

    public static ValueTask<IImage> OpenAsync(string path, bool readOnly = true) =>
        Opener.OpenAsync(path, new ImageOpenRequest("vmdk", ReadOnly: readOnly));

    public static async Task<byte[]> ReadAllAsync(IBlockDevice device)
    {
        byte[] data = new byte[device.SizeBytes];
        for (long offset = 0; offset < data.Length; offset += 4 * MiB)
        {
            int length = (int)Math.Min(4 * MiB, data.Length - offset);
            await device.ReadAsync(offset, data.AsMemory((int)offset, length));
        }

        return data;
    }

    public static byte[] Random(int length, int seed)
    {
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }
}

using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats.Vdi;

namespace ImgTool.Formats.Tests.Vdi;

internal static class VdiTestSupport
{
    public const int MiB = 1 << 20;

    public static readonly ImageOpenContext NoBacking = new(false, null);

    public static async Task<MemoryHostFile> CreateInMemory(long size, string options = "")
    {
        var file = new MemoryHostFile("mem.vdi");
        await VdiFormat.Instance.CreateAsync(file, new ImageCreateRequest(size, ImageOptions.Parse(options.Length == 0 ? [] : [options])));
        return file;
    }

    public static async Task<IImage> Open(IHostFile file) => await VdiFormat.Instance.OpenAsync(file, NoBacking);

    public static byte[] ReadAll(IHostFile file)
    {
        byte[] data = new byte[file.Length];
        file.ReadZeroFilledAsync(0, data).AsTask().GetAwaiter().GetResult();
        return data;
    }

    public static void PatchU32(IHostFile file, long offset, uint value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        file.WriteAsync(offset, bytes).AsTask().GetAwaiter().GetResult();
    }

    public static uint ReadU32(IHostFile file, long offset)
    {
        byte[] bytes = new byte[4];
        file.ReadZeroFilledAsync(offset, bytes).AsTask().GetAwaiter().GetResult();
        return BinaryPrimitives.ReadUInt32LittleEndian(bytes);
    }

    public static VdiHeader Header(IHostFile file)
    {
        byte[] sector = new byte[VdiHeader.SizeBytes];
        file.ReadZeroFilledAsync(0, sector).AsTask().GetAwaiter().GetResult();
        return VdiHeader.Read(sector);
    }

    public static uint Entry(IHostFile file, long block) => ReadU32(file, Header(file).BlockMapOffsetBytes + (block * 4));

    public static void SetEntry(IHostFile file, long block, uint value) => PatchU32(file, Header(file).BlockMapOffsetBytes + (block * 4), value);

    public static byte[] Pattern(int length, int seed)
    {
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static async Task<long> Corruptions(IImage image) => (await ((ICheckable)image).CheckAsync(CheckRepair.None)).Corruptions;
}

using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats.Vhd;

namespace ImgTool.Formats.Tests.Vhd;

internal static class VhdTestSupport
{
    public const long MiB = 1 << 20;

    public static readonly ImageOpenContext NoBacking = new(false, null);

    public static async Task<MemoryHostFile> CreateInMemory(long size, string options = "")
    {
        var file = new MemoryHostFile("mem.vhd");
        await VhdFormat.Instance.CreateAsync(file, new ImageCreateRequest(size, ImageOptions.Parse(options.Length == 0 ? [] : [options])));
        return file;
    }

    public static async Task<IImage> Open(MemoryHostFile file) => await VhdFormat.Instance.OpenAsync(file, NoBacking);

    public static byte[] ReadAll(IHostFile file)
    {
        byte[] data = new byte[file.Length];
        file.ReadZeroFilledAsync(0, data).AsTask().GetAwaiter().GetResult();
        return data;
    }

    /// <summary>Rewrites bytes of a footer (or header) and fixes its checksum, as another tool would have written it.</summary>
    public static void PatchFooter(MemoryHostFile file, long footerOffset, Action<byte[]> edit, bool fixChecksum = true)
    {
        byte[] footer = new byte[VhdFooter.SizeBytes];
        file.ReadZeroFilledAsync(footerOffset, footer).AsTask().GetAwaiter().GetResult();
        edit(footer);
        if (fixChecksum)
        {
            BinaryPrimitives.WriteUInt32BigEndian(footer.AsSpan(VhdFooter.ChecksumOffset), VhdFooter.ComputeChecksum(footer, VhdFooter.ChecksumOffset));
        }

        file.WriteAsync(footerOffset, footer).AsTask().GetAwaiter().GetResult();
    }

    public static void PatchHeader(MemoryHostFile file, Action<byte[]> edit)
    {
        byte[] header = new byte[VhdDynamicHeader.SizeBytes];
        file.ReadZeroFilledAsync(VhdFooter.SizeBytes, header).AsTask().GetAwaiter().GetResult();
        edit(header);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(VhdDynamicHeader.ChecksumOffset), VhdFooter.ComputeChecksum(header, VhdDynamicHeader.ChecksumOffset));
        file.WriteAsync(VhdFooter.SizeBytes, header).AsTask().GetAwaiter().GetResult();
    }

    public static byte[] Pattern(int length, int seed)
    {
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }
}

using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats.Qcow2;
using ImgTool.Formats.Qed;
using ImgTool.Formats.Raw;
using ImgTool.Formats.Tests.Qcow2;

namespace ImgTool.Formats.Tests.Qed;

internal static class QedTestImages
{
    public static async Task<SharedHostFile> CreateInMemoryAsync(long size, string options = "", string? backing = null, string? backingFormat = null)
    {
        var file = new SharedHostFile(new MemoryHostFile("test.qed"));
        await QedFormat.Instance.CreateAsync(file, new ImageCreateRequest(size, ImageOptions.Parse(options.Length == 0 ? [] : [options]), backing, backingFormat));
        return file;
    }

    public static async Task<IImage> OpenAsync(IHostFile file, bool readOnly = false, Func<string, string?, CancellationToken, ValueTask<IImage>>? backing = null, bool checking = false) =>
        await QedFormat.Instance.OpenAsync(file, new ImageOpenContext(readOnly, backing, Checking: checking));

    /// <summary>A raw backing image in memory filled with a pattern, opened read-only whatever name the overlay asks for.</summary>
    public static async Task<(byte[] Data, Func<string, string?, CancellationToken, ValueTask<IImage>> Open)> RawBackingAsync(long size, int seed)
    {
        byte[] data = new byte[size];
        new Random(seed).NextBytes(data);
        var file = new SharedHostFile(new MemoryHostFile("base.raw"));
        await file.WriteAsync(0, data);
        return (data, async (_, _, ct) => await RawFormat.Instance.OpenAsync(file, new ImageOpenContext(true, null), ct));
    }

    /// <summary>A qcow2 backing image in memory with a pattern written in part of it: QED over another format.</summary>
    public static async Task<(byte[] Data, Func<string, string?, CancellationToken, ValueTask<IImage>> Open)> Qcow2BackingAsync(long size, int seed)
    {
        SharedHostFile file = await Qcow2TestImages.CreateInMemoryAsync(size, "cluster_size=4k");
        byte[] data = new byte[size];
        var random = new Random(seed);
        await using (IImage writer = await Qcow2TestImages.OpenAsync(file))
        {
            byte[] part = new byte[size / 3];
            random.NextBytes(part);
            part.CopyTo(data, size / 4);
            await writer.WriteAsync(size / 4, part);
        }

        return (data, async (_, _, ct) => await Qcow2Format.Instance.OpenAsync(file, new ImageOpenContext(true, null), ct));
    }

    public static async Task<byte[]> ReadAllAsync(IBlockDevice device)
    {
        byte[] all = new byte[device.SizeBytes];
        await device.ReadAsync(0, all);
        return all;
    }

    public static async Task<QedHeader> ReadHeaderAsync(IHostFile file)
    {
        byte[] raw = new byte[QedHeader.SizeBytes];
        await file.ReadAsync(0, raw);
        return QedHeader.Read(raw);
    }

    public static async Task WriteHeaderAsync(IHostFile file, QedHeader header) => await file.WriteAsync(0, header.ToBytes());

    public static async Task WriteEntryAsync(IHostFile file, long offset, long entry)
    {
        byte[] raw = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(raw, entry);
        await file.WriteAsync(offset, raw);
    }

    public static async Task<long> ReadEntryAsync(IHostFile file, long offset)
    {
        byte[] raw = new byte[8];
        await file.ReadAsync(offset, raw);
        return System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(raw);
    }
}

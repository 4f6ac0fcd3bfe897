using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Tests.ReadOnly;

/// <summary>Opens images of the read-only formats from real files, reads them whole, and asks qemu-img for its bytes.</summary>
internal static class ReadOnlyTestSupport
{
    public const int MiB = 1 << 20;

    public static ImageOpener Opener { get; } = new(FormatRegistry.Default);

    public static ValueTask<IImage> OpenAsync(string path, string? format = null, bool readOnly = true, bool metadataOnly = false) =>
        Opener.OpenAsync(path, new ImageOpenRequest(format, ReadOnly: readOnly, MetadataOnly: metadataOnly));

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

    /// <summary>What `qemu-img convert -O raw` makes of the image.</summary>
    public static async Task<byte[]> QemuRawAsync(string image, TempDir dir)
    {
        string raw = dir.File(Path.GetFileName(image) + ".qemu.raw");
        await QemuAsync("convert", "-O", "raw", image, raw);
        return await File.ReadAllBytesAsync(raw);
    }

    public static async Task QemuAsync(params string[] args)
    {
        (int code, string output) = await ExternalTool.RunAsync("qemu-img", args);
        Assert.True(code == 0, $"qemu-img {string.Join(' ', args)}: {output}");
    }

    /// <summary>Opens and reads the whole image; the failure must be one of our typed errors with
    /// <paramref name="expected"/> in its one-line message.</summary>
    public static async Task<ImgToolException> FailsAsync(string path, string expected, string? format = null)
    {
        var e = await Assert.ThrowsAnyAsync<ImgToolException>(async () =>
        {
            await using IImage image = await OpenAsync(path, format);
            _ = await ReadAllAsync(image);
        });
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    public static async Task PatchAsync(string path, long offset, ReadOnlyMemory<byte> bytes)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.Position = offset;
        await stream.WriteAsync(bytes);
    }

    public static Task Patch32BigEndianAsync(string path, long offset, uint value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return PatchAsync(path, offset, bytes);
    }

    public static Task Patch64BigEndianAsync(string path, long offset, ulong value)
    {
        byte[] bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        return PatchAsync(path, offset, bytes);
    }

    public static Task Patch32LittleEndianAsync(string path, long offset, uint value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        return PatchAsync(path, offset, bytes);
    }

    /// <summary>A sparse raw file with seeded random data at the given places (the rest a hole). The data uses four
    /// byte values only, so that it compresses (compressed clusters stay compressed).</summary>
    public static byte[] RawFile(string path, long size, params (long Offset, int Length)[] extents)
    {
        byte[] model = new byte[size];
        var random = new Random(7);
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        stream.SetLength(size);
        foreach ((long offset, int length) in extents)
        {
            Span<byte> data = model.AsSpan((int)offset, length);
            random.NextBytes(data);
            for (int i = 0; i < data.Length; i++)
            {
                data[i] &= 3;
            }

            stream.Position = offset;
            stream.Write(data);
        }

        return model;
    }
}

using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats.Qcow2;

namespace ImgTool.Formats.Tests.Qcow2;

/// <summary>A host file that outlives the images opened on it, so tests can reopen an in-memory image.</summary>
internal sealed class SharedHostFile(IHostFile inner) : IHostFile
{
    public string Path => inner.Path;

    public bool IsReadOnly => inner.IsReadOnly;

    public long Length => inner.Length;

    public long AllocatedBytes => inner.AllocatedBytes;

    public int Alignment => inner.Alignment;

    public ValueTask<int> ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(offsetBytes, buffer, cancellationToken);

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(offsetBytes, buffer, cancellationToken);

    public void SetLength(long lengthBytes) => inner.SetLength(lengthBytes);

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

    public HostExtent GetExtent(long offsetBytes, long maxLengthBytes) => inner.GetExtent(offsetBytes, maxLengthBytes);

    public void PunchHole(long offsetBytes, long lengthBytes) => inner.PunchHole(offsetBytes, lengthBytes);

    public void ZeroRange(long offsetBytes, long lengthBytes) => inner.ZeroRange(offsetBytes, lengthBytes);

    public void Preallocate(long offsetBytes, long lengthBytes, bool writeZeros) => inner.Preallocate(offsetBytes, lengthBytes, writeZeros);

    public void Dispose()
    {
        // The test owns the inner file.
    }
}

internal static class Qcow2TestImages
{
    public static async Task<SharedHostFile> CreateInMemoryAsync(long size, string options, string? backing = null)
    {
        var file = new SharedHostFile(new MemoryHostFile("test.qcow2"));
        await Qcow2Format.Instance.CreateAsync(file, new ImageCreateRequest(size, ImageOptions.Parse(options.Length == 0 ? [] : [options]), backing, backing is null ? null : "qcow2"));
        return file;
    }

    public static async Task<IImage> OpenAsync(IHostFile file, bool readOnly = false, Func<string, string?, CancellationToken, ValueTask<IImage>>? backing = null) =>
        await Qcow2Format.Instance.OpenAsync(file, new ImageOpenContext(readOnly, backing));

    public static async Task<byte[]> ReadAllAsync(IBlockDevice device)
    {
        byte[] all = new byte[device.SizeBytes];
        await device.ReadAsync(0, all);
        return all;
    }

    /// <summary>qemu-img check on a copy of the in-memory image: the peer agrees it is clean.</summary>
    public static async Task AssertQemuCleanAsync(IImage image, IHostFile file)
    {
        await image.FlushAsync();
        byte[] bytes = new byte[file.Length];
        await file.ReadAsync(0, bytes);
        string path = Path.Combine(Path.GetTempPath(), $"imgtool-prop-{Guid.NewGuid():N}.qcow2");
        try
        {
            await File.WriteAllBytesAsync(path, bytes);
            (int code, string output) = await ExternalTool.RunAsync("qemu-img", "check", "-U", "-f", "qcow2", path);
            Assert.True(code == 0, output);
        }
        finally
        {
            File.Delete(path);
        }
    }

    public static async Task AssertCleanAsync(IImage image)
    {
        CheckReport report = await ((ICheckable)image).CheckAsync(CheckRepair.None);
        Assert.True(report.Corruptions == 0 && report.Leaks == 0 && report.CheckErrors == 0,
            string.Join("\n", report.Findings.Select(f => f.Message)));
    }
}

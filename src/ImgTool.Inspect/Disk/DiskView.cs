using ImgTool.Block.Devices;

namespace ImgTool.Inspect.Disk;

/// <summary>A window of a block device (the whole disk, or one partition) that every reader of the
/// partition tables and file systems goes through: each read is checked against the window, so a
/// pointer read from a hostile image can never reach outside it or past the end of the disk.</summary>
public sealed class DiskView
{
    private readonly IBlockDevice device;
    private readonly long startBytes;

    public DiskView(IBlockDevice device, string name)
        : this(device, 0, device.SizeBytes, name)
    {
    }

    private DiskView(IBlockDevice device, long startBytes, long lengthBytes, string name)
    {
        this.device = device;
        this.startBytes = startBytes;
        LengthBytes = lengthBytes;
        Name = name;
    }

    public long LengthBytes { get; }

    /// <summary>What the window is, for messages: the image file, or "partition 2".</summary>
    public string Name { get; }

    /// <summary>Where the window starts on the disk.</summary>
    public long StartBytes => startBytes;

    public bool Contains(long offsetBytes, long lengthBytes) =>
        offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes <= LengthBytes && lengthBytes <= LengthBytes - offsetBytes;

    /// <summary>A sub-window; a partition reaching past the disk's end is cut at the end (the caller reports it).</summary>
    public DiskView Slice(long offsetBytes, long lengthBytes, string name)
    {
        long start = Math.Clamp(offsetBytes, 0, LengthBytes);
        long length = Math.Clamp(lengthBytes, 0, LengthBytes - start);
        return new DiskView(device, startBytes + start, length, name);
    }

    /// <summary>Reads exactly the buffer; a range outside the window is damage in the structure that pointed there.</summary>
    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, string structure, CancellationToken cancellationToken)
    {
        if (!Contains(offsetBytes, buffer.Length))
        {
            throw new FilesystemCorruptException($"{structure} at byte {offsetBytes} lies outside {Name} ({LengthBytes} bytes)");
        }

        await device.ReadAsync(startBytes + offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<byte[]> ReadBytesAsync(long offsetBytes, int count, string structure, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[count];
        await ReadAsync(offsetBytes, buffer, structure, cancellationToken).ConfigureAwait(false);
        return buffer;
    }

    /// <summary>Reads what there is of the range (zeros past the end): for probing, where a short partition simply has no magic.</summary>
    public async ValueTask<byte[]> ReadHeadAsync(long offsetBytes, int count, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[count];
        if (offsetBytes < LengthBytes)
        {
            int available = (int)Math.Min(count, LengthBytes - offsetBytes);
            await device.ReadAsync(startBytes + offsetBytes, buffer.AsMemory(0, available), cancellationToken).ConfigureAwait(false);
        }

        return buffer;
    }
}

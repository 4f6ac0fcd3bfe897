using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;

namespace ImgTool.Formats.ReadOnly;

/// <summary>
/// What every read-only image shares: the write paths refuse with the one-line "read-only format" error, flush has
/// nothing to do, disposal closes the host file (and the backing image, if any). Subclasses read and report status.
/// </summary>
internal abstract class ReadOnlyImage(IHostFile file, string formatName, long sizeBytes) : IImage
{
    public string FormatName { get; } = formatName;

    /// <summary>The first <paramref name="sizeBytes"/> bytes of the file, the header every driver starts from; a shorter file is not this format.</summary>
    protected static async ValueTask<byte[]> ReadHeaderBytesAsync(IHostFile file, int sizeBytes, string headerName, CancellationToken cancellationToken)
    {
        if (file.Length < sizeBytes)
        {
            throw new ImageFormatException($"file is too small for a {headerName} header", file.Path);
        }

        byte[] bytes = new byte[sizeBytes];
        await file.ReadZeroFilledAsync(0, bytes, cancellationToken).ConfigureAwait(false);
        return bytes;
    }

    public IHostFile HostFile { get; } = file;

    public long SizeBytes { get; } = sizeBytes;

    public virtual int Alignment => 1;

    public bool IsReadOnly => true;

    public abstract ImageDetails Details { get; }

    public abstract ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default);

    public abstract ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default);

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => throw ReadOnlyError();

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default) => throw ReadOnlyError();

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => throw ReadOnlyError();

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public virtual ValueTask DisposeAsync()
    {
        HostFile.Dispose();
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    /// <summary>Keeps a request inside the disk, as the block-device contract promises callers do.</summary>
    protected void CheckRange(long offsetBytes, long lengthBytes)
    {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > SizeBytes - lengthBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"request [{offsetBytes}, +{lengthBytes}) is outside the disk of {SizeBytes} bytes");
        }
    }

    /// <summary>Metadata found broken while reading: one line naming the structure and where it is.</summary>
    protected ImageCorruptException Corrupt(string message, string structure, long offsetBytes) =>
        new(message, structure, offsetBytes, HostFile.Path);

    private UnsupportedFeatureException ReadOnlyError() =>
        new($"'{FormatName}' is a read-only format: imgtool reads it, but cannot create or write it", HostFile.Path);
}

using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Info;

namespace ImgTool.Formats.Raw;

/// <summary>A raw image: requests pass straight to the host file; block status comes from its holes.</summary>
internal sealed class RawImage(IHostFile file) : IImage, IResizable
{
    public string FormatName => "raw";

    public IHostFile HostFile { get; } = file;

    public ImageDetails Details => ImageDetails.None;

    public long SizeBytes => HostFile.Length;

    public int Alignment => HostFile.Alignment;

    public bool IsReadOnly => HostFile.IsReadOnly;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        HostFile.ReadZeroFilledAsync(offsetBytes, buffer, cancellationToken);

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        HostFile.WriteAsync(offsetBytes, buffer, cancellationToken);

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        if (flags.HasFlag(BlockZeroFlags.MayUnmap))
        {
            HostFile.PunchHole(offsetBytes, lengthBytes);
        }
        else
        {
            HostFile.ZeroRange(offsetBytes, lengthBytes);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        HostFile.PunchHole(offsetBytes, lengthBytes);
        return ValueTask.CompletedTask;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => HostFile.FlushAsync(cancellationToken);

    /// <summary>A hole reads as zeros and says so; data is data at the same offset in the file.</summary>
    public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        HostExtent extent = HostFile.GetExtent(offsetBytes, lengthBytes);
        return ValueTask.FromResult(extent.IsData
            ? new BlockStatus(BlockStatusKind.Data, extent.LengthBytes, offsetBytes)
            : new BlockStatus(BlockStatusKind.Zero, extent.LengthBytes, offsetBytes));
    }

    public ValueTask ResizeAsync(long newSizeBytes, CancellationToken cancellationToken = default)
    {
        HostFile.SetLength(newSizeBytes);
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        HostFile.Dispose();
        return ValueTask.CompletedTask;
    }
}

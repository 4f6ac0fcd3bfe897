using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats.Amend;

/// <summary>What an in-place format conversion is asked to do.</summary>
/// <param name="SourceFormat">The image's current format (forced with -f or probed).</param>
/// <param name="TargetFormat">The format to convert to (amend's <c>-o format=</c>).</param>
/// <param name="TargetOptions">The target format's options that may accompany the conversion (qcow2's <c>compat</c>).</param>
/// <param name="ProbeBackingFormat">Probes the named backing file (resolved against the image) and returns its format
/// name, or null when it cannot be opened: QED records no backing format but "raw", so a conversion to QED checks that
/// probing finds the format the qcow2 header names.</param>
/// <param name="AfterWrite">Called after every write, truncation and flush the conversion makes, with their running
/// count (the crash-test hook; null in normal use).</param>
public sealed record FormatConversionRequest(
    string SourceFormat,
    string TargetFormat,
    ImageOptions TargetOptions,
    Func<string, CancellationToken, ValueTask<string?>>? ProbeBackingFormat = null,
    Action<int>? AfterWrite = null);

/// <summary>What a conversion did.</summary>
/// <param name="DataClusters">Guest data clusters that kept their host offset.</param>
/// <param name="ZeroClusters">Clusters mapped as "reads as zeros".</param>
/// <param name="MetadataBytesWritten">Bytes of new tables and header written (guest data is never copied, except the
/// few clusters <paramref name="ClustersMoved"/> counts).</param>
/// <param name="ClustersMoved">Clusters moved after the switch to fill the holes the old metadata left (QED only).</param>
/// <param name="LeakedClusters">Holes left unreferenced in the result (QED counts them as leaks); 0 normally.</param>
public sealed record FormatConversionResult(
    string FromFormat,
    string ToFormat,
    int ClusterSizeBytes,
    long DataClusters,
    long ZeroClusters,
    long MetadataBytesWritten,
    long ClustersMoved,
    long LeakedClusters,
    long FileLengthBefore,
    long FileLengthAfter);

/// <summary>
/// In-place conversion between qcow2 and QED without copying guest data: both formats map guest clusters to host
/// clusters of the same size through two-level tables, so the data clusters stay where they are and only the
/// metadata around them is rewritten.
/// </summary>
/// <remarks>
/// Crash safety comes from the order of writes. The new tables go into space past the end of the old image (which the
/// old format does not reference, so it stays valid and complete); they are flushed; then the new header is written
/// in one write of the first cluster, the switch; and flushed again. Before the switch the file opens as the old
/// format, after it as the new one. Both headers live in cluster 0 (qcow2's header is cluster 0, QED's header_size
/// is one cluster here), and nothing else of the old metadata is touched before the switch.
/// </remarks>
public static class FormatConversion
{
    public static bool IsSupported(string sourceFormat, string targetFormat) =>
        (sourceFormat, targetFormat) is ("qcow2", "qed") or ("qed", "qcow2");

    /// <summary>The options the target format takes during a conversion; every other one is refused by the caller.</summary>
    public static IReadOnlyList<string> TargetOptionNames(string targetFormat) => targetFormat == "qcow2" ? ["compat"] : [];

    public static async ValueTask<FormatConversionResult> ConvertAsync(IHostFile file, FormatConversionRequest request, CancellationToken cancellationToken = default)
    {
        var writer = new ConversionFile(file, request.AfterWrite);
        return (request.SourceFormat, request.TargetFormat) switch
        {
            ("qcow2", "qed") => await Qcow2ToQed.ConvertAsync(writer, request, cancellationToken).ConfigureAwait(false),
            ("qed", "qcow2") => await QedToQcow2.ConvertAsync(writer, request, cancellationToken).ConfigureAwait(false),
            _ => throw new UnsupportedFeatureException($"converting {request.SourceFormat} to {request.TargetFormat} in place is not supported (only qcow2 <-> qed)", file.Path),
        };
    }
}

/// <summary>The image file as the conversion writes it: every change goes through here and is counted, so a test can
/// stop the process after any one of them.</summary>
internal sealed class ConversionFile(IHostFile file, Action<int>? afterWrite)
{
    private int _writes;

    public IHostFile File { get; } = file;

    public string Path => File.Path;

    public long BytesWritten { get; private set; }

    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await File.WriteAsync(offsetBytes, data, cancellationToken).ConfigureAwait(false);
        BytesWritten += data.Length;
        Tick();
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        await File.FlushAsync(cancellationToken).ConfigureAwait(false);
        Tick();
    }

    public void SetLength(long lengthBytes)
    {
        File.SetLength(lengthBytes);
        Tick();
    }

    private void Tick() => afterWrite?.Invoke(++_writes);
}

using ImgTool.Block.Devices;
using ImgTool.Block.Info;
using ImgTool.Formats;
using ImgTool.Operations.Presets;

namespace ImgTool.Operations.Info;

/// <param name="Preset">--preset: also report what that platform would refuse in the image.</param>
public sealed record InfoOptions(string FileName, string? Format = null, bool BackingChain = false, bool ForceShare = false, string? Preset = null);

/// <summary>What `info` reports about one image (qemu-img's ImageInfo).</summary>
public sealed record ImageInfo(
    string FileName,
    string Format,
    long VirtualSizeBytes,
    long ActualSizeBytes,
    bool DirtyFlag,
    long? ClusterSizeBytes,
    bool Encrypted,
    string? BackingFileName,
    string? FullBackingFileName,
    string? BackingFormat,
    string? FormatSpecificType,
    InfoObject? FormatSpecific,
    IReadOnlyList<SnapshotInfo>? Snapshots = null,
    bool ReportsDirtyFlag = true);

/// <summary>The image first, then with --backing-chain each backing image in order.</summary>
/// <param name="PresetProblems">With --preset, what the platform would refuse in the (top) image; empty when it would take it.</param>
public sealed record InfoResult(IReadOnlyList<ImageInfo> Images, string? Preset = null, IReadOnlyList<string>? PresetProblems = null);

/// <summary>imgtool info.</summary>
public sealed class InfoOperation(ImageOpener opener)
{
    public async ValueTask<InfoResult> RunAsync(InfoOptions options, CancellationToken cancellationToken = default)
    {
        Preset? preset = options.Preset is null ? null : Preset.Get(options.Preset);
        var images = new List<ImageInfo>();
        await using IImage image = await opener.OpenAsync(
            options.FileName,
            new ImageOpenRequest(options.Format, ForceShare: options.ForceShare, OpenBacking: options.BackingChain, MetadataOnly: true),
            cancellationToken).ConfigureAwait(false);

        // With --image-opts the argument is an option string: the image is named as qemu-img names it, and
        // backing names resolve against the file's own path.
        ImageOptsString? opts = opener.ImageOpts && ImageOptsString.Looks(options.FileName) ? ImageOptsString.Parse(options.FileName) : null;
        string fileName = opts?.FileName ?? options.FileName;
        string shownName = opts?.QemuDisplayName ?? fileName;
        IBlockDevice? layer = image;
        while (layer is IImage current)
        {
            images.Add(await DescribeAsync(current, current == image ? shownName : fileName, cancellationToken).ConfigureAwait(false));
            if (!options.BackingChain || current is not IBackingChain { Backing: { } backing, BackingFileName: { } name })
            {
                break;
            }

            fileName = ImageOpener.ResolveBackingPath(fileName, name);
            layer = backing;
        }

        return new InfoResult(images, preset?.Name, preset is null ? null : PresetCheck.Problems(preset, image));
    }

    private static async ValueTask<ImageInfo> DescribeAsync(IImage image, string fileName, CancellationToken cancellationToken)
    {
        IReadOnlyList<SnapshotInfo>? snapshots = image is ISnapshots keeper
            ? await keeper.ListSnapshotsAsync(cancellationToken).ConfigureAwait(false)
            : null;
        ImageDetails details = image.Details;
        var chain = image as IBackingChain;
        string? backingName = chain?.BackingFileName;
        return new ImageInfo(
            fileName,
            image.FormatName,
            image.SizeBytes,
            details.ActualSizeBytes ?? image.HostFile.AllocatedBytes,
            details.DirtyFlag,
            details.ClusterSizeBytes,
            details.Encrypted,
            backingName,
            backingName is null ? null : ImageOpener.ResolveBackingPath(fileName, backingName),
            chain?.BackingFormat,
            details.FormatSpecificType,
            details.FormatSpecific,
            snapshots is { Count: > 0 } ? snapshots : null,
            details.ReportsDriverInfo);
    }
}

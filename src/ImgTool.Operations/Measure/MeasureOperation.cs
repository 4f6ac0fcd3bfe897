using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Options;
using ImgTool.Formats;
using ImgTool.Formats.Luks;
using ImgTool.Formats.Qcow2;

namespace ImgTool.Operations.Measure;

/// <summary>imgtool measure's options, named after qemu-img's.</summary>
/// <param name="FileName">The source image, or null with <paramref name="SizeBytes"/> (--size).</param>
/// <param name="TargetFormat">-O: the format to measure for (default raw).</param>
/// <param name="Snapshot">-l: measure an internal snapshot of the source (its ID or name, or snapshot.id=,snapshot.name=).</param>
public sealed record MeasureOptions(
    string? FileName,
    long? SizeBytes,
    string? SourceFormat = null,
    string TargetFormat = "raw",
    IReadOnlyList<string>? OptionStrings = null,
    string? Snapshot = null,
    bool ForceShare = false);

/// <summary>qemu-img measure's figures.</summary>
/// <param name="RequiredBytes">The file size a new image of the source (or of an empty disk) needs.</param>
/// <param name="FullyAllocatedBytes">The file size when every guest byte is allocated.</param>
/// <param name="BitmapsBytes">Room for the source's persistent bitmaps, when source and target can both hold them (qcow2 v3).</param>
public sealed record MeasureResult(long RequiredBytes, long FullyAllocatedBytes, long? BitmapsBytes);

/// <summary>
/// imgtool measure: how large a new image would be. For raw, qcow2 and luks the figures are QEMU's (qemu-img computes
/// them from formulas and scripts size volumes by them); for every other writable format they are exact, found by
/// simulating the convert (<see cref="ConvertSimulation"/>).
/// </summary>
public sealed class MeasureOperation(ImageOpener opener)
{
    /// <summary>Status is asked for in pieces no larger than this, as qemu-img does.</summary>
    private const long QueryBytes = 1L << 30;

    public async ValueTask<MeasureResult> RunAsync(MeasureOptions options, CancellationToken cancellationToken = default)
    {
        if ((options.FileName is null) == (options.SizeBytes is null))
        {
            throw new InvalidOptionException(options.FileName is null
                ? "Either --size N or one filename must be specified."
                : "--size N cannot be used together with a filename.");
        }

        if (options.SizeBytes < 0)
        {
            throw new InvalidOptionException("Invalid image size specified.");
        }

        if (options.Snapshot is not null && options.FileName is null)
        {
            throw new InvalidOptionException("--snapshot is only allowed with a filename.");
        }

        FormatDriver driver = opener.Registry.Get(options.TargetFormat);
        driver.EnsureWritableFormat(null);
        ImageOptions targetOptions = ImageOptions.Parse(options.OptionStrings ?? []);
        targetOptions.Validate(driver.CreateOptionSpecs, driver.Name);
        if (options.FileName is null)
        {
            return await MeasureAsync(driver, targetOptions, null, options.SizeBytes!.Value, cancellationToken).ConfigureAwait(false);
        }

        await using IImage source = await opener.OpenAsync(options.FileName, new ImageOpenRequest(options.SourceFormat, ForceShare: options.ForceShare), cancellationToken).ConfigureAwait(false);
        if (options.Snapshot is { } snapshot)
        {
            await LoadSnapshotAsync(source, snapshot, cancellationToken).ConfigureAwait(false);
        }

        return await MeasureAsync(driver, targetOptions, source, source.SizeBytes, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<MeasureResult> MeasureAsync(FormatDriver driver, ImageOptions options, IImage? source, long sizeBytes, CancellationToken cancellationToken)
    {
        switch (driver.Name)
        {
            case "raw":
                // raw_measure: the file is the disk; a size given with --size is rounded up to a sector.
                long raw = source is null ? RoundUp(sizeBytes, 512) : sizeBytes;
                return new MeasureResult(raw, raw, null);
            case "luks":
                // block_crypto_measure: header and key slots, then the payload.
                long luks = LuksMeasure.PayloadOffsetBytes(options, string.Empty, opener.Secrets) + sizeBytes;
                return new MeasureResult(luks, luks, null);
            case "qcow2":
                return await MeasureQcow2Async(options, source, sizeBytes, cancellationToken).ConfigureAwait(false);
            default:
                return await SimulateAsync(driver, options, source, sizeBytes, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask<MeasureResult> MeasureQcow2Async(ImageOptions options, IImage? source, long sizeBytes, CancellationToken cancellationToken)
    {
        Qcow2MeasureLayout layout = Qcow2Measure.Layout(options, sizeBytes, opener.Secrets);
        long dataBytes = 0;
        if (source is not null)
        {
            // With a backing file QEMU cannot know what the new image shares with it, so it counts every cluster.
            dataBytes = layout.HasBackingFile ? layout.AlignedSizeBytes : await DataClusterBytesAsync(source, layout.ClusterSizeBytes, cancellationToken).ConfigureAwait(false);
        }

        long? bitmaps = layout.Version >= 3 && source is not null ? Qcow2Measure.PersistentBitmapsBytes(source, layout.ClusterSizeBytes) : null;
        return new MeasureResult(layout.RequiredBytes(dataBytes), layout.FullyAllocatedBytes, bitmaps);
    }

    /// <summary>The clusters of the new image that hold data: every cluster touched by a range the source's chain stores
    /// as data (ranges that read as zeros, or that nothing in the chain allocates, need none).</summary>
    private static async ValueTask<long> DataClusterBytesAsync(IImage source, long clusterBytes, CancellationToken cancellationToken)
    {
        long clusters = 0;
        long nextUncounted = 0;
        long size = source.SizeBytes; // once: a raw image asks the host file (fstat) each time
        for (long offset = 0; offset < size;)
        {
            BlockStatus status = await BackingChainStatus.GetAsync(source, offset, Math.Min(QueryBytes, size - offset), cancellationToken).ConfigureAwait(false);
            long end = offset + status.LengthBytes;
            if (status.Kind == BlockStatusKind.Data && !status.DataIsHostHole)
            {
                long first = Math.Max(offset / clusterBytes, nextUncounted);
                long last = (end - 1) / clusterBytes;
                if (last >= first)
                {
                    clusters += last - first + 1;
                    nextUncounted = last + 1;
                }
            }

            offset = end;
        }

        return clusters * clusterBytes;
    }

    private async ValueTask<MeasureResult> SimulateAsync(FormatDriver driver, ImageOptions options, IImage? source, long sizeBytes, CancellationToken cancellationToken)
    {
        if (options.GetString("backing_file") is not null)
        {
            throw new UnsupportedFeatureException($"measure: a backing file is measured for qcow2 only, not for '{driver.Name}'");
        }

        bool compresses = driver.AlwaysCompresses(options);
        IBlockDevice required = source is null
            ? new EmptyDevice(sizeBytes)
            : compresses ? new ConcatenatedDevice([source]) : new SectorFillDevice(new ConcatenatedDevice([source]));
        long requiredBytes = await ConvertSimulation.RunAsync(driver, options, required, opener.Secrets, null, cancellationToken).ConfigureAwait(false);
        long fullBytes = await ConvertSimulation.RunAsync(driver, options, new AllDataDevice(sizeBytes, compresses), opener.Secrets, null, cancellationToken).ConfigureAwait(false);
        return new MeasureResult(requiredBytes, fullBytes, null);
    }

    /// <summary>-l: "NAME_OR_ID", or "snapshot.id=ID,snapshot.name=NAME" (either part may be left out), as qemu-img.</summary>
    private static async ValueTask LoadSnapshotAsync(IImage source, string selector, CancellationToken cancellationToken)
    {
        if (source is not ISnapshots snapshots)
        {
            throw new UnsupportedFeatureException($"Failed to load snapshot: format '{source.FormatName}' has no internal snapshots", source.HostFile.Path);
        }

        string? id = null;
        string? name = null;
        if (!selector.StartsWith("snapshot.", StringComparison.Ordinal))
        {
            await snapshots.LoadSnapshotReadOnlyAsync(selector, null, null, cancellationToken).ConfigureAwait(false);
            return;
        }

        foreach (string part in selector.Split(','))
        {
            switch (part.Split('=', 2))
            {
                case ["snapshot.id", string value]: id = value; break;
                case ["snapshot.name", string value]: name = value; break;
                default: throw new InvalidOptionException($"Invalid parameter '{part.Split('=')[0]}' in -l (use snapshot.id=ID,snapshot.name=NAME)");
            }
        }

        await snapshots.LoadSnapshotReadOnlyAsync(null, id, name, cancellationToken).ConfigureAwait(false);
    }

    private static long RoundUp(long value, long unit) => (value + unit - 1) / unit * unit;
}

using System.Diagnostics;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Options;
using ImgTool.Formats;
using ImgTool.Operations.Common;
using ImgTool.Operations.Presets;

namespace ImgTool.Operations.Convert;

/// <summary>imgtool convert: one or more sources, concatenated, into a new (or, with -n, existing) target.</summary>
public sealed class ConvertOperation(ImageOpener opener)
{
    public const int MaxParallel = 16;

    public async ValueTask<ConvertResult> RunAsync(ConvertOptions options, IProgress<ProgressReport>? progress = null, CancellationToken cancellationToken = default)
    {
        // -o backing_file= and -o backing_fmt= are -B and -F spelt as options (qemu-img treats them alike).
        ImageOptions given = ImageOptions.Parse(options.TargetOptionStrings ?? []);
        options = options with
        {
            BackingFile = options.BackingFile ?? given.GetString("backing_file"),
            BackingFormat = options.BackingFormat ?? given.GetString("backing_fmt"),
        };
        Validate(options);
        Preset? preset = options.Preset is null ? null : Preset.Get(options.Preset);
        FormatDriver driver = opener.Registry.Get(preset?.ResolveFormat(options.TargetFormat) ?? options.TargetFormat ?? "raw");
        driver.EnsureWritableFormat(options.Target);
        IReadOnlyList<string> optionStrings = options.TargetOptionStrings ?? [];
        ImageOptions targetOptions = ImageOptions.Parse(preset?.MergeOptions(optionStrings) ?? optionStrings);
        // A format that compresses everything anyway (streamOptimized) gets the parallel compressed path without -c.
        if (!options.Compress && !options.NoCreate && driver.AlwaysCompresses(targetOptions))
        {
            options = options with { Compress = true };
        }

        if (options.Compress && !driver.SupportsCompression(targetOptions))
        {
            throw new UnsupportedFeatureException(
                driver.CompressionHint(targetOptions) is { } hint
                    ? $"compression (-c) is not supported by format '{driver.Name}' with these options: {hint}"
                    : $"compression (-c) is not supported by format '{driver.Name}' with these options",
                options.Target);
        }

        if (options.NoCreate && targetOptions.Values.Count > 0)
        {
            throw new InvalidOptionException("-o cannot be used with -n: the target is not created", options.Target);
        }

        if (options.BackingFile is not null && !driver.SupportsBackingFile)
        {
            throw new UnsupportedFeatureException($"Backing file not supported for file format '{driver.Name}'");
        }

        var stopwatch = Stopwatch.StartNew();
        var sources = new List<IImage>();
        try
        {
            foreach (string source in options.Sources)
            {
                sources.Add(await opener.OpenAsync(source, new ImageOpenRequest(options.SourceFormat, ForceShare: options.ForceShare, Cache: options.SourceCache), cancellationToken).ConfigureAwait(false));
            }

            if (options.Snapshot is { } snapshot)
            {
                await LoadSnapshotAsync(sources[0], snapshot, cancellationToken).ConfigureAwait(false);
            }

            if (sources.Any(s => IsSameFile(s.HostFile.Path, options.Target)))
            {
                throw new InvalidOptionException("the target is also a source; convert into a new file", options.Target);
            }

            long totalBytes = sources.Sum(s => s.SizeBytes);
            long targetBytes = preset?.RoundSize(totalBytes) ?? totalBytes;
            IReadOnlyList<string> related = [];
            if (options.BackingFile is { } backingFile)
            {
                // As create does: the backing file must exist and be of the format named.
                await using IImage backing = await opener.OpenAsync(
                    ImageOpener.ResolveBackingPath(options.Target, backingFile),
                    new ImageOpenRequest(options.BackingFormat, ForceShare: true),
                    cancellationToken).ConfigureAwait(false);
            }

            if (!options.NoCreate)
            {
                var request = new ImageCreateRequest(targetBytes, targetOptions, options.BackingFile, options.BackingFormat) { AllowOutsideFiles = opener.AllowOutsideFiles, Secrets = opener.Secrets };
                related = await ImageFactory.CreateAsync(options.Target, driver, request, cancellationToken).ConfigureAwait(false);
            }

            try
            {
                byte[]? targetKey = (targetOptions.GetString("encrypt.key-secret") ?? targetOptions.GetString("key-secret")) is { } keyId ? opener.Secret(keyId) : null;
                ConvertPipeline pipeline = await CopyAsync(options, driver.Name, sources, totalBytes, targetKey, progress, cancellationToken).ConfigureAwait(false);
                return new ConvertResult(
                    options.Target,
                    driver.Name,
                    targetBytes,
                    pipeline.DataBytesRead,
                    pipeline.BytesWritten,
                    pipeline.ZeroBytesSkipped,
                    pipeline.ZeroBytesWritten,
                    stopwatch.Elapsed,
                    totalBytes,
                    preset?.Name);
            }
            catch when (!options.NoCreate)
            {
                // A half-written target must not stay behind looking like a good image.
                ImageFactory.RemoveQuietly(options.Target);
                foreach (string file in related)
                {
                    ImageFactory.RemoveQuietly(file);
                }

                throw;
            }
        }
        finally
        {
            foreach (IImage source in sources)
            {
                await source.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async ValueTask<ConvertPipeline> CopyAsync(ConvertOptions options, string targetFormat, List<IImage> sources, long totalBytes, byte[]? targetKey, IProgress<ProgressReport>? progress, CancellationToken cancellationToken)
    {
        await using IImage target = await opener.OpenAsync(
            options.Target,
            new ImageOpenRequest(targetFormat, ReadOnly: false, Cache: options.TargetCache, EncryptionPassword: targetKey),
            cancellationToken).ConfigureAwait(false);
        if (target.SizeBytes < totalBytes)
        {
            throw new InvalidOptionException(
                $"the target is smaller than the source ({target.SizeBytes} < {totalBytes} bytes)", options.Target);
        }

        ICompressedWrites? compressed = null;
        if (options.Compress)
        {
            compressed = target as ICompressedWrites
                ?? throw new UnsupportedFeatureException($"compression (-c) is not supported by format '{target.FormatName}'", options.Target);
        }

        // A target created here reads as zeros, so zero ranges need no writes at all; not over a backing file,
        // which would show through.
        bool targetHasBacking = options.BackingFile is not null;
        bool targetIsZero = !targetHasBacking && ((!options.NoCreate && opener.Registry.Get(targetFormat).CreatesZeroedImages) || options.TargetIsZero);

        // With -B the single source is asked about its own top layer (what it does not hold stays with the backing
        // file); otherwise about the whole chain of every source.
        IBlockDevice source = targetHasBacking ? sources[0] : new ConcatenatedDevice(sources);
        var pipeline = new ConvertPipeline(source, target, compressed, options.SparseBytes, targetIsZero, options.Parallel, options.OutOfOrder, progress)
        {
            LeavesUnallocatedToBacking = targetHasBacking,
        };
        await pipeline.RunAsync(cancellationToken).ConfigureAwait(false);
        await target.FlushAsync(cancellationToken).ConfigureAwait(false);
        return pipeline;
    }

    /// <summary>-l: "NAME_OR_ID", or "snapshot.id=ID,snapshot.name=NAME" (either part may be left out), as qemu-img.</summary>
    private static async ValueTask LoadSnapshotAsync(IImage source, string selector, CancellationToken cancellationToken)
    {
        if (source is not ISnapshots snapshots)
        {
            throw new UnsupportedFeatureException($"Failed to load snapshot: format '{source.FormatName}' has no internal snapshots", source.HostFile.Path);
        }

        if (!selector.StartsWith("snapshot.", StringComparison.Ordinal))
        {
            await snapshots.LoadSnapshotReadOnlyAsync(selector, null, null, cancellationToken).ConfigureAwait(false);
            return;
        }

        string? id = null;
        string? name = null;
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

    private static bool IsSameFile(string a, string b)
    {
        if (!File.Exists(b))
        {
            return false;
        }

        return Canonical(a) == Canonical(b);

        static string Canonical(string path) =>
            new FileInfo(Path.GetFullPath(path)).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
    }

    private static void Validate(ConvertOptions options)
    {
        if (options.Sources.Count == 0)
        {
            throw new InvalidOptionException("convert needs at least one source and a target");
        }

        if (options.Parallel is < 1 or > MaxParallel)
        {
            throw new InvalidOptionException($"-m must be between 1 and {MaxParallel}");
        }

        if (options.SparseBytes < 0 || options.SparseBytes % 512 != 0 || options.SparseBytes > ConvertOptions.MaxSparseBytes)
        {
            throw new InvalidOptionException(ConvertOptions.InvalidSparseSize);
        }

        if (options.TargetIsZero && !options.NoCreate)
        {
            throw new InvalidOptionException("--target-is-zero requires -n");
        }

        if (options.Snapshot is not null && options.Sources.Count > 1)
        {
            throw new InvalidOptionException("No support for concatenating multiple snapshot");
        }

        if (options.BackingFile is not null)
        {
            if (options.BackingFormat is null)
            {
                throw new InvalidOptionException("Use of backing file requires explicit backing format");
            }

            if (options.Sources.Count > 1)
            {
                throw new InvalidOptionException("Having a backing file for the target makes no sense when concatenating multiple input images");
            }

            if (options.NoCreate)
            {
                throw new InvalidOptionException("-B cannot be used with -n: the target is not created");
            }
        }
        else if (options.BackingFormat is not null)
        {
            throw new InvalidOptionException("Backing format cannot be used without backing file", options.Target);
        }
    }
}

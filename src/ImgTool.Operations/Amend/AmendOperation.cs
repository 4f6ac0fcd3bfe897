using System.Diagnostics;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats;
using ImgTool.Formats.Amend;

namespace ImgTool.Operations.Amend;

/// <param name="Format">-f: the image's format, or null to probe it.</param>
/// <param name="OptionStrings">The -o lists, as given.</param>
/// <param name="AfterWrite">Called after every write of a conversion with the running count (the crash-test hook).</param>
public sealed record AmendOptions(
    string FileName,
    string? Format,
    IReadOnlyList<string> OptionStrings,
    CacheMode Cache = CacheMode.Writeback,
    Action<int>? AfterWrite = null);

/// <summary>What amend changed. <paramref name="Conversion"/> is null when nothing had to change.</summary>
public sealed record AmendResult(string FileName, string Format, FormatConversionResult? Conversion, TimeSpan Elapsed);

/// <summary>
/// imgtool amend: changes an image's options in place. Today that is the format itself, qcow2 &lt;-&gt; qed
/// (<see cref="FormatConversion"/>); each format's own amend options (qcow2's compat, lazy_refcounts, refcount_bits,
/// ...) are dispatched from <see cref="AmendSameFormatAsync"/> and are refused there, by name, until implemented.
/// </summary>
public sealed class AmendOperation(ImageOpener opener)
{
    /// <summary>The option that selects the target format.</summary>
    public const string FormatOption = "format";

    public async ValueTask<AmendResult> RunAsync(AmendOptions options, CancellationToken cancellationToken = default)
    {
        ImageOptions all = ImageOptions.Parse(options.OptionStrings);
        if (all.Values.Count == 0)
        {
            throw new InvalidOptionException("amend needs options to change, e.g. -o format=qed");
        }

        var started = Stopwatch.StartNew();
        using LinuxHostFile file = LinuxHostFile.Open(options.FileName, new HostOpenOptions(ReadOnly: false, options.Cache));
        string sourceFormat = options.Format ?? (await opener.ProbeAsync(file, cancellationToken).ConfigureAwait(false)).Name;
        _ = opener.Registry.Get(sourceFormat);
        string targetFormat = all.GetString(FormatOption) ?? sourceFormat;
        ImageOptions rest = all.Values.Where(kv => kv.Key != FormatOption).Aggregate(ImageOptions.Empty, (o, kv) => o.With(kv.Key, kv.Value));

        FormatConversionResult? conversion = null;
        if (targetFormat != sourceFormat)
        {
            _ = opener.Registry.Get(targetFormat);
            if (!FormatConversion.IsSupported(sourceFormat, targetFormat))
            {
                throw new UnsupportedFeatureException($"amend cannot change the format from {sourceFormat} to {targetFormat} (in place only qcow2 <-> qed is supported; use convert)", options.FileName);
            }

            IReadOnlyList<string> allowed = FormatConversion.TargetOptionNames(targetFormat);
            if (rest.Values.FirstOrDefault(kv => !allowed.Contains(kv.Key)) is { Key: { } unsupported })
            {
                throw new UnsupportedFeatureException($"amend option '{unsupported}' is not supported yet (with format={targetFormat} only {(allowed.Count == 0 ? "format" : string.Join(", ", ["format", .. allowed]))} may be given)", options.FileName);
            }

            conversion = await FormatConversion.ConvertAsync(
                file,
                new FormatConversionRequest(sourceFormat, targetFormat, rest, ProbeBackingAsync, options.AfterWrite),
                cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await AmendSameFormatAsync(sourceFormat, rest, options.FileName).ConfigureAwait(false);
        }

        return new AmendResult(options.FileName, targetFormat, conversion, started.Elapsed);

        async ValueTask<string?> ProbeBackingAsync(string backingName, CancellationToken ct)
        {
            try
            {
                using LinuxHostFile backing = LinuxHostFile.Open(ImageOpener.ResolveBackingPath(options.FileName, backingName), new HostOpenOptions(ReadOnly: true));
                return (await opener.ProbeAsync(backing, ct).ConfigureAwait(false)).Name;
            }
            catch (Exception e) when (e is ImgToolException or IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }
    }

    /// <summary>A format's own amend options. None is implemented yet: each is refused by name, so a handler per format
    /// (qcow2: compat, lazy_refcounts, refcount_bits, size, backing_file, ...) slots in here.</summary>
    private static ValueTask AmendSameFormatAsync(string format, ImageOptions options, string fileName)
    {
        if (options.Values.Count > 0)
        {
            throw new UnsupportedFeatureException($"amend option '{options.Values[0].Key}' is not supported yet for {format}", fileName);
        }

        return ValueTask.CompletedTask;
    }
}

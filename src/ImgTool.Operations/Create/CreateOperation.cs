using System.Globalization;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Options;
using ImgTool.Formats;
using ImgTool.Operations.Presets;

namespace ImgTool.Operations.Create;

/// <param name="SizeBytes">The size given on the command line, or null to take it from -o size or the backing file.</param>
/// <param name="Unsafe">-u: do not open the backing file (its size must then be given).</param>
/// <param name="Format">The format (-f), or null for raw (or the preset's).</param>
/// <param name="Preset">--preset: a destination platform's format, options and size rounding.</param>
/// <param name="ProbeBackingFormat">--probe-backing-format: a backing file without -F gets the format its contents
/// are probed as (and the image records it); without it, as qemu-img 7.2, the backing format must be given.</param>
public sealed record CreateOptions(
    string FileName,
    string? Format,
    long? SizeBytes,
    IReadOnlyList<string> OptionStrings,
    string? BackingFile = null,
    string? BackingFormat = null,
    bool Unsafe = false,
    string? Preset = null,
    bool ProbeBackingFormat = false);

/// <summary>What was created, with the options as qemu-img's "Formatting ..." line lists them.</summary>
/// <param name="RequestedSizeBytes">The size asked for, when a preset rounded it up to <paramref name="SizeBytes"/>.</param>
public sealed record CreateResult(string FileName, string Format, long SizeBytes, IReadOnlyList<KeyValuePair<string, string>> Options, string? Preset = null, long? RequestedSizeBytes = null);

/// <summary>imgtool create: a new empty image, optionally over a backing file.</summary>
public sealed class CreateOperation(ImageOpener opener)
{
    public async ValueTask<CreateResult> RunAsync(CreateOptions options, CancellationToken cancellationToken = default)
    {
        Preset? preset = options.Preset is null ? null : Preset.Get(options.Preset);
        FormatDriver driver = opener.Registry.Get(preset?.ResolveFormat(options.Format) ?? options.Format ?? "raw");
        driver.EnsureWritableFormat(options.FileName);
        ImageOptions imageOptions = ImageOptions.Parse(preset?.MergeOptions(options.OptionStrings) ?? options.OptionStrings);

        string? backingFile = options.BackingFile ?? imageOptions.GetString("backing_file");
        string? backingFormat = options.BackingFormat ?? imageOptions.GetString("backing_fmt");
        long? size = options.SizeBytes ?? imageOptions.GetSize("size");
        BackingFormatRules.CheckCreate(driver, options.FileName, backingFile, backingFormat, options.Unsafe, options.ProbeBackingFormat);
        if (backingFile is not null && !options.Unsafe)
        {
            // Open the backing file as qemu-img does: it must exist, and it gives the default size.
            await using IImage backing = await opener.OpenBackingFileAsync(
                options.FileName,
                backingFile,
                new ImageOpenRequest(Format: backingFormat, ForceShare: true),
                cancellationToken).ConfigureAwait(false);
            size ??= backing.SizeBytes;
            if (backingFormat is null && !options.ProbeBackingFormat)
            {
                throw BackingFormatRules.NotGiven(options.FileName, backing.FormatName);
            }

            backingFormat ??= backing.FormatName;
        }

        if (size is not { } sizeBytes)
        {
            throw new InvalidOptionException("Image creation needs a size parameter", options.FileName); // qemu-img's words (the SIZE argument or -o size=)
        }

        long requested = sizeBytes;
        sizeBytes = preset?.RoundSize(sizeBytes) ?? sizeBytes;
        var request = new ImageCreateRequest(sizeBytes, imageOptions, backingFile, backingFormat) { AllowOutsideFiles = opener.AllowOutsideFiles, Secrets = opener.Secrets };
        await ImageFactory.CreateAsync(options.FileName, driver, request, cancellationToken).ConfigureAwait(false);

        return new CreateResult(options.FileName, driver.Name, sizeBytes, AsQemuPrintsThem(driver, imageOptions, sizeBytes, backingFile, backingFormat),
            preset?.Name, requested != sizeBytes ? requested : null);
    }

    /// <summary>
    /// The options as qemu-img's "Formatting ..." line prints them: every option the format knows, in the order
    /// its option list has them, with the value given or else the default QEMU prints, sizes and numbers as plain
    /// numbers (cluster_size=64k prints 65536).
    /// </summary>
    private static List<KeyValuePair<string, string>> AsQemuPrintsThem(FormatDriver driver, ImageOptions given, long sizeBytes, string? backingFile, string? backingFormat)
    {
        var listed = new List<KeyValuePair<string, string>>();
        foreach (ImageOptionSpec spec in driver.CreateOptionSpecs)
        {
            string? value = spec.Name switch
            {
                "size" => sizeBytes.ToString(CultureInfo.InvariantCulture),
                "backing_file" => backingFile,
                "backing_fmt" => backingFile is null ? null : backingFormat,
                _ => spec.Kind switch
                {
                    ImageOptionKind.Size => given.GetSize(spec.Name)?.ToString(CultureInfo.InvariantCulture),
                    ImageOptionKind.Number => given.GetNumber(spec.Name)?.ToString(CultureInfo.InvariantCulture),
                    _ => given.GetString(spec.Name),
                } ?? spec.Default,
            };
            if (value is not null)
            {
                listed.Add(new(spec.Name, value));
            }
        }

        // Formats QEMU gives no backing file option but we can chain (differencing VHD, VHDX) still say so.
        if (backingFile is not null && !listed.Any(kv => kv.Key == "backing_file"))
        {
            listed.Add(new("backing_file", backingFile));
            if (backingFormat is not null)
            {
                listed.Add(new("backing_fmt", backingFormat));
            }
        }

        return listed;
    }
}

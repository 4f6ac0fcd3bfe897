using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Options;
using ImgTool.Formats;

namespace ImgTool.Operations.Create;

/// <param name="SizeBytes">The size given on the command line, or null to take it from -o size or the backing file.</param>
/// <param name="Unsafe">-u: do not open the backing file (its size must then be given).</param>
public sealed record CreateOptions(
    string FileName,
    string Format,
    long? SizeBytes,
    IReadOnlyList<string> OptionStrings,
    string? BackingFile = null,
    string? BackingFormat = null,
    bool Unsafe = false);

/// <summary>What was created, with the options as qemu-img's "Formatting ..." line lists them.</summary>
public sealed record CreateResult(string FileName, string Format, long SizeBytes, IReadOnlyList<KeyValuePair<string, string>> Options);

/// <summary>imgtool create: a new empty image, optionally over a backing file.</summary>
public sealed class CreateOperation(ImageOpener opener)
{
    public async ValueTask<CreateResult> RunAsync(CreateOptions options, CancellationToken cancellationToken = default)
    {
        FormatDriver driver = opener.Registry.Get(options.Format);
        ImageOptions imageOptions = ImageOptions.Parse(options.OptionStrings);

        string? backingFile = options.BackingFile ?? imageOptions.GetString("backing_file");
        string? backingFormat = options.BackingFormat ?? imageOptions.GetString("backing_fmt");
        long? size = options.SizeBytes ?? imageOptions.GetSize("size");
        if (backingFile is not null && !options.Unsafe)
        {
            // Open the backing file as qemu-img does: it must exist, and it gives the default size.
            await using IImage backing = await opener.OpenAsync(
                ImageOpener.ResolveBackingPath(options.FileName, backingFile),
                new ImageOpenRequest(Format: backingFormat, ForceShare: true),
                cancellationToken).ConfigureAwait(false);
            size ??= backing.SizeBytes;
            backingFormat ??= backing.FormatName;
        }

        if (size is not { } sizeBytes)
        {
            throw new InvalidOptionException("image size must be specified (as the SIZE argument or -o size=)", options.FileName);
        }

        var request = new ImageCreateRequest(sizeBytes, imageOptions, backingFile, backingFormat);
        await ImageFactory.CreateAsync(options.FileName, driver, request, cancellationToken).ConfigureAwait(false);

        var listed = new List<KeyValuePair<string, string>>();
        if (backingFile is not null)
        {
            listed.Add(new("backing_file", backingFile));
            if (backingFormat is not null)
            {
                listed.Add(new("backing_fmt", backingFormat));
            }
        }

        listed.AddRange(imageOptions.Values.Where(kv => kv.Key is not ("size" or "backing_file" or "backing_fmt")));
        return new CreateResult(options.FileName, driver.Name, sizeBytes, listed);
    }
}

using System.CommandLine;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Convert;
using ImgTool.Operations.Presets;

namespace ImgTool.Cli.Commands;

/// <summary>convert [-f fmt] [-O output_fmt] [-B backing_file -F backing_fmt] [-l snapshot_param] [-o options] [-S sparse_size] [-n] [-p] [-m num] [-W] [-c] filename [filename2 [...]] output_filename</summary>
internal static class ConvertCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format(description: "Source format (probed when not given)");
        var outputFormat = new Option<string?>("-O") { Description = "Target format (default raw)", HelpName = "output_fmt" };
        var preset = CommonOptions.Preset();
        var options = CreateCommand.OptionList();
        var sparse = new Option<string?>("-S") { Description = "Zero runs of at least this size are not written (default 4k, at most 16M; 0 allocates everything)", HelpName = "sparse_size" };
        var noCreate = new Option<bool>("-n") { Description = "Do not create the target; write into the existing one" };
        var progress = new Option<bool>("-p") { Description = "Show progress" };
        var progressStyle = new Option<string?>("--progress") { Description = "Show progress as human text or as JSON lines on stderr", HelpName = "human|json" }
            .AcceptOnlyFromAmong("human", "json");
        var parallel = new Option<int>("-m") { Description = "Requests in flight (1-16, default 8)", DefaultValueFactory = _ => 8, HelpName = "num" };
        var outOfOrder = new Option<bool>("-W") { Description = "Allow out-of-order writes to the target" };
        var compress = new Option<bool>("-c") { Description = "Compress the target (formats that support it)" };
        var forceShare = CommonOptions.ForceShare();
        var cache = CommonOptions.Cache("-t", "Target cache mode (default unsafe)");
        var sourceCache = CommonOptions.Cache("-T", "Source cache mode (default writeback)");
        var targetIsZero = new Option<bool>("--target-is-zero") { Description = "With -n: the target already reads as zeros" };
        var backingFile = new Option<string?>("-B") { Description = "Give the target this backing file and leave to it what the source's top layer does not hold", HelpName = "backing_file" };
        var backingFormat = new Option<string?>("-F") { Description = "The backing file's format (required with -B)", HelpName = "backing_fmt" };
        var snapshot = new Option<string?>("-l") { Description = "Convert an internal snapshot of the source: its ID or name, or snapshot.id=ID,snapshot.name=NAME", HelpName = "snapshot_param" };
        var output = CommonOptions.Output();
        var files = new Argument<string[]>("filename") { Arity = ArgumentArity.ZeroOrMore, Description = "Source image(s), then the target" };
        var command = new Command("convert", "Convert (and concatenate) images into a new image")
        {
            format, outputFormat, preset, options, sparse, noCreate, progress, progressStyle, parallel, outOfOrder, compress,
            forceShare, cache, sourceCache, targetIsZero, backingFile, backingFormat, snapshot, output, files,
        };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            string? presetName = parse.GetValue(preset);
            string? targetFormat = parse.GetValue(outputFormat);
            string[] optionStrings = parse.GetValue(options) ?? [];
            if (ImageOptions.IsHelpRequest(optionStrings))
            {
                string helpFormat = presetName is null ? targetFormat ?? "raw" : Preset.Get(presetName).ResolveFormat(targetFormat);
                await CreateCommand.PrintOptionHelpAsync(context, context.Opener.Registry.Get(helpFormat)).ConfigureAwait(false);
                return 0;
            }

            string[] names = parse.GetValue(files) ?? [];
            if (names.FirstOrDefault(n => n.Length > 1 && n[0] == '-') is { } unknown)
            {
                // Not a file name: an option this convert does not have (a file named so can be given as ./-name).
                throw new InvalidOptionException(UnknownOptions.Describe(unknown.Split('=', 2)[0], command, (RootCommand)parse.RootCommandResult.Command));
            }

            if (names.Length < 2)
            {
                throw new InvalidOptionException("Must specify image file name"); // qemu-img's words for a missing source or target
            }

            var convertOptions = new ConvertOptions(
                names[..^1],
                names[^1],
                parse.GetValue(format),
                targetFormat,
                optionStrings,
                parse.GetValue(compress),
                parse.GetValue(sparse) is { } s ? SparseSize(s) : 4096,
                parse.GetValue(noCreate),
                parse.GetValue(parallel),
                parse.GetValue(outOfOrder),
                parse.GetValue(targetIsZero),
                parse.GetValue(forceShare),
                CommonOptions.ParseCache(parse.GetValue(cache), CacheMode.Unsafe),
                CommonOptions.ParseSourceCache(parse.GetValue(sourceCache)),
                presetName,
                parse.GetValue(backingFile),
                parse.GetValue(backingFormat),
                parse.GetValue(snapshot));

            ProgressPrinter? printer = ProgressPrinter.Create(context, parse.GetValue(progress), parse.GetValue(progressStyle));
            ConvertResult result = await new ConvertOperation(context.Opener).RunAsync(convertOptions, printer, cancellationToken).ConfigureAwait(false);
            printer?.Finish();
            if (parse.IsJson(output))
            {
                await context.Output.WriteLineAsync(Json(result)).ConfigureAwait(false);
            }
            else if (result.Preset is not null && !parse.GetValue(context.Quiet))
            {
                // qemu-img prints nothing after a convert; a preset says what it made, as the user asked for a platform.
                string rounded = result.VirtualSizeBytes != result.SourceSizeBytes ? $" (rounded up from {result.SourceSizeBytes})" : string.Empty;
                await context.Output.WriteLineAsync($"Preset {result.Preset}: wrote {result.TargetFormat} image '{result.Target}', virtual size {result.VirtualSizeBytes} bytes{rounded}").ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    private static string Json(ConvertResult result) => JsonText.Build(w =>
    {
        w.WriteStartObject();
        w.WriteString("target", result.Target);
        w.WriteString("format", result.TargetFormat);
        w.WriteNumber("virtual-size", result.VirtualSizeBytes);
        w.WriteNumber("source-size", result.SourceSizeBytes);
        if (result.Preset is not null)
        {
            w.WriteString("preset", result.Preset);
        }

        w.WriteNumber("bytes-read", result.DataBytesRead);
        w.WriteNumber("bytes-written", result.BytesWritten);
        w.WriteNumber("zero-bytes-skipped", result.ZeroBytesSkipped);
        w.WriteNumber("zero-bytes-written", result.ZeroBytesWritten);
        w.WriteNumber("seconds", Math.Round(result.Elapsed.TotalSeconds, 3));
        w.WriteEndObject();
    });

    /// <summary>-S as qemu-img parses it (a size with suffixes, 1.5k allowed), with qemu-img's message when it is none.</summary>
    private static long SparseSize(string text) =>
        SizeParser.TryParse(text, out long bytes) ? bytes : throw new InvalidOptionException(ConvertOptions.UnparsableSparseSize);
}

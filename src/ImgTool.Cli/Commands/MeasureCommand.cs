using System.CommandLine;
using ImgTool.Block.Options;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Measure;

namespace ImgTool.Cli.Commands;

/// <summary>measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [--object objectdef] [--image-opts]
/// [-f fmt] [-l snapshot_param] filename]: qemu-img measure's syntax and output.</summary>
internal static class MeasureCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format(description: "Source format (probed when not given)");
        var outputFormat = new Option<string?>("-O") { Description = "Target format to measure for (default raw)", HelpName = "output_fmt" };
        var options = CreateCommand.OptionList();
        var size = new Option<string?>("--size") { Description = "Measure a new, empty image of this virtual size instead of a source", HelpName = "N" };
        var snapshot = new Option<string?>("-l") { Description = "Measure an internal snapshot of the source: its ID or name, or snapshot.id=ID,snapshot.name=NAME", HelpName = "snapshot_param" };
        var forceShare = CommonOptions.ForceShare();
        var output = CommonOptions.Output();
        var file = new Argument<string?>("filename") { Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("measure", "Compute the file size a new image needs (of a source image, or of an empty disk with --size)")
        {
            format, outputFormat, options, size, snapshot, forceShare, output, file,
        };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            string targetFormat = parse.GetValue(outputFormat) ?? "raw";
            string[] optionStrings = parse.GetValue(options) ?? [];
            if (ImageOptions.IsHelpRequest(optionStrings))
            {
                await CreateCommand.PrintOptionHelpAsync(context, context.Opener.Registry.Get(targetFormat)).ConfigureAwait(false);
                return 0;
            }

            MeasureResult result = await new MeasureOperation(context.Opener).RunAsync(
                new MeasureOptions(
                    parse.GetValue(file),
                    parse.GetValue(size) is { } text ? SizeParser.Parse(text, "image size") : null,
                    parse.GetValue(format),
                    targetFormat,
                    optionStrings,
                    parse.GetValue(snapshot),
                    parse.GetValue(forceShare)),
                cancellationToken).ConfigureAwait(false);
            await context.Output.WriteAsync(parse.IsJson(output) ? Json(result) + "\n" : Human(result)).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    internal static string Human(MeasureResult result) =>
        $"required size: {result.RequiredBytes}\nfully allocated size: {result.FullyAllocatedBytes}\n"
        + (result.BitmapsBytes is { } bitmaps ? $"bitmaps size: {bitmaps}\n" : string.Empty);

    /// <summary>qemu-img's field order: bitmaps (when known) first.</summary>
    internal static string Json(MeasureResult result) => JsonText.Build(w =>
    {
        w.WriteStartObject();
        if (result.BitmapsBytes is { } bitmaps)
        {
            w.WriteNumber("bitmaps", bitmaps);
        }

        w.WriteNumber("required", result.RequiredBytes);
        w.WriteNumber("fully-allocated", result.FullyAllocatedBytes);
        w.WriteEndObject();
    });
}

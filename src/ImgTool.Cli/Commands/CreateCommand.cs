using System.CommandLine;
using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Block.Options;
using ImgTool.Cli.Rendering;
using ImgTool.Formats;
using ImgTool.Operations.Create;
using ImgTool.Operations.Presets;

namespace ImgTool.Cli.Commands;

/// <summary>create [-f fmt] [-o options] [-b backing_file -F backing_fmt | -b backing_file --probe-backing-format] [-u] [-q] filename [size]</summary>
internal static class CreateCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format(description: "Image format (default raw)");
        var preset = CommonOptions.Preset();
        var options = OptionList();
        var backing = new Option<string?>("-b") { Description = "Backing file", HelpName = "backing_file" };
        var backingFormat = new Option<string?>("-F") { Description = "Backing file format", HelpName = "backing_fmt" };
        var unsafeBacking = new Option<bool>("-u") { Description = "Do not open the backing file (its size and -F must be given)" };
        var probeBacking = new Option<bool>(BackingFormatRules.ProbeFlag)
        {
            Description = "With -b and no -F: use the format the backing file is probed as (and record it). Without it, as qemu-img, -b needs -F",
        };
        var output = CommonOptions.Output();
        var file = new Argument<string?>("filename") { Arity = ArgumentArity.ZeroOrOne };
        var size = new Argument<string?>("size") { Arity = ArgumentArity.ZeroOrOne, Description = "Virtual size, with an optional k, M, G, T, P or E suffix" };
        var command = new Command("create", "Create a new image") { format, preset, options, backing, backingFormat, unsafeBacking, probeBacking, output, file, size };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            string? presetName = parse.GetValue(preset);
            string formatName = presetName is null ? parse.GetValue(format) ?? "raw" : Preset.Get(presetName).ResolveFormat(parse.GetValue(format));
            string[] optionStrings = parse.GetValue(options) ?? [];
            if (ImageOptions.IsHelpRequest(optionStrings))
            {
                await PrintOptionHelpAsync(context, context.Opener.Registry.Get(formatName)).ConfigureAwait(false);
                return 0;
            }

            string fileName = parse.GetValue(file) ?? throw new InvalidOptionException("Expecting image file name");
            long? sizeBytes = parse.GetValue(size) is { } text ? SizeParser.Parse(text, "image size") : null;
            CreateResult result = await new CreateOperation(context.Opener).RunAsync(
                new CreateOptions(fileName, parse.GetValue(format), sizeBytes, optionStrings, parse.GetValue(backing), parse.GetValue(backingFormat), parse.GetValue(unsafeBacking), presetName, parse.GetValue(probeBacking)),
                cancellationToken).ConfigureAwait(false);
            if (parse.GetValue(context.Quiet))
            {
                return 0;
            }

            await context.Output.WriteLineAsync(parse.IsJson(output) ? Json(result) : Human(result)).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>-o, repeatable; each takes one comma-separated list.</summary>
    public static Option<string[]> OptionList() =>
        new("-o") { Description = "Format options, comma separated (-o help lists them)", HelpName = "options", Arity = ArgumentArity.OneOrMore };

    public static async Task PrintOptionHelpAsync(CliContext context, FormatDriver driver)
    {
        var text = new StringBuilder("Supported options:\n");
        // A read-only format has no create options that work: say so, as create itself would.
        driver.EnsureWritableFormat(null);
        foreach (ImageOptionSpec spec in driver.CreateOptionSpecs.Where(s => !s.Hidden).OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            text.Append(spec.HelpLine).Append('\n');
        }

        await context.Output.WriteAsync(text.ToString()).ConfigureAwait(false);
    }

    private static string Human(CreateResult result)
    {
        var text = new StringBuilder($"Formatting '{result.FileName}', fmt={result.Format}");
        foreach (var (key, value) in result.Options)
        {
            text.Append(' ').Append(key).Append('=').Append(value);
        }

        if (result.RequestedSizeBytes is { } requested)
        {
            text.Append($"\nPreset {result.Preset}: virtual size rounded up from {requested} to {result.SizeBytes} bytes");
        }

        return text.ToString();
    }

    private static string Json(CreateResult result) => JsonText.Build(w =>
    {
        w.WriteStartObject();
        w.WriteString("filename", result.FileName);
        w.WriteString("format", result.Format);
        w.WriteNumber("virtual-size", result.SizeBytes);
        w.WriteOptionalString("preset", result.Preset);
        w.WriteOptionalNumber("requested-size", result.RequestedSizeBytes);
        w.WriteStartObject("options");
        foreach (var (key, value) in result.Options.Where(o => o.Key != "size"))
        {
            w.WriteString(key, value);
        }

        w.WriteEndObject();
        w.WriteEndObject();
    });
}

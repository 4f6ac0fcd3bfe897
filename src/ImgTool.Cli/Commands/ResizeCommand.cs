using System.CommandLine;
using ImgTool.Block.Host;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Resize;

namespace ImgTool.Cli.Commands;

/// <summary>
/// resize [-f fmt] [--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size: qemu-img resize's syntax and its
/// "Image resized." line. As in qemu-img, "-1G" after the file name is the size, not an option.
/// </summary>
internal static class ResizeCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var shrink = new Option<bool>("--shrink") { Description = "Allow the image to become smaller (data past the new end is lost)" };
        var preallocation = new Option<string?>("--preallocation") { Description = "Preallocation of the new area: off, falloc or full (raw)", HelpName = "prealloc" };
        var cache = CommonOptions.Cache("-t", "Cache mode for the image (default writeback)");
        var output = CommonOptions.Output();
        var file = new Argument<string>("filename");
        var size = new Argument<string?>("size") { Description = "New size, or +SIZE / -SIZE relative to the current one", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("resize", "Change an image's virtual size")
        {
            format, shrink, preallocation, cache, output, file, size,
        };

        // "-1G" looks like an option to the parser; qemu-img takes the last argument as the size whatever it looks like.
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            string? sizeText = parse.GetValue(size);
            IReadOnlyList<string> unmatched = parse.UnmatchedTokens;
            if (sizeText is null && unmatched.Count == 1 && unmatched[0].StartsWith('-'))
            {
                sizeText = unmatched[0];
            }
            else if (unmatched.Count > 0)
            {
                // qemu-img's words: a word too many is miscounted arguments, a dash word an unknown option.
                throw new Block.Errors.InvalidOptionException(unmatched[0].StartsWith('-') ? $"unrecognized option '{unmatched[0]}'" : "Expecting image file name and size");
            }

            if (sizeText is null)
            {
                throw new Block.Errors.InvalidOptionException("Not enough arguments");
            }

            ResizeResult result = await new ResizeOperation(context.Opener).RunAsync(
                new ResizeOptions(
                    parse.GetValue(file)!,
                    sizeText,
                    parse.GetValue(format),
                    parse.GetValue(shrink),
                    parse.GetValue(preallocation),
                    CommonOptions.ParseCache(parse.GetValue(cache), CacheMode.Writeback)),
                cancellationToken).ConfigureAwait(false);
            if (parse.IsJson(output))
            {
                await context.Output.WriteLineAsync(Json(result)).ConfigureAwait(false);
            }
            else if (!parse.GetValue(context.Quiet))
            {
                await context.Output.WriteLineAsync("Image resized.").ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    internal static string Json(ResizeResult result) => JsonText.Build(w =>
    {
        w.WriteStartObject();
        w.WriteString("filename", result.FileName);
        w.WriteString("format", result.Format);
        w.WriteNumber("old-size", result.OldSizeBytes);
        w.WriteNumber("new-size", result.NewSizeBytes);
        w.WriteEndObject();
    });
}

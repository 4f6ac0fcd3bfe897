using System.CommandLine;
using ImgTool.Block.Options;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Commit;

namespace ImgTool.Cli.Commands;

/// <summary>
/// commit [-f fmt] [-t cache] [-b base] [-d] [-p] [-r rate_limit] [-q] filename: qemu-img commit's syntax and its
/// "Image committed." line; --output=json prints what was written instead.
/// </summary>
internal static class CommitCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var cache = CommonOptions.Cache("-t", "Cache mode for the images written (default writeback)");
        var baseImage = new Option<string?>("-b") { Description = "Commit into this image of the backing chain (default: the backing file); implies -d", HelpName = "base" };
        var drop = new Option<bool>("-d") { Description = "Do not empty the image after the commit" };
        var progress = new Option<bool>("-p") { Description = "Show progress" };
        var progressStyle = new Option<string?>("--progress") { Description = "Show progress as human text or as JSON lines on stderr", HelpName = "human|json" }
            .AcceptOnlyFromAmong("human", "json");
        var rate = new Option<string?>("-r") { Description = "Rate limit in bytes per second (k, M, G suffixes)", HelpName = "rate_limit" };
        var output = CommonOptions.Output();
        var file = new Argument<string>("filename");
        var command = new Command("commit", "Write an image's data into its backing file (or into a base further down the chain) and empty it")
        {
            format, cache, baseImage, drop, progress, progressStyle, rate, output, file,
        };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            string? rateText = parse.GetValue(rate);
            long? rateLimit = rateText is null ? null : SizeParser.Parse(rateText, "rate limit");
            string? baseName = parse.GetValue(baseImage);
            ProgressPrinter? printer = ProgressPrinter.Create(context, parse.GetValue(progress), parse.GetValue(progressStyle));
            CommitResult result = await new CommitOperation(context.Opener).RunAsync(
                new CommitOptions(
                    parse.GetValue(file)!,
                    parse.GetValue(format),
                    baseName,
                    Drop: parse.GetValue(drop) || baseName is not null,
                    CommonOptions.ParseCache(parse.GetValue(cache), Block.Host.CacheMode.Writeback),
                    rateLimit,
                    CrashHook.FromEnvironment(CrashHook.CommitVariable)),
                printer,
                cancellationToken).ConfigureAwait(false);
            printer?.Finish();
            if (parse.IsJson(output))
            {
                await context.Output.WriteLineAsync(Json(result)).ConfigureAwait(false);
            }
            else if (!parse.GetValue(context.Quiet))
            {
                await context.Output.WriteLineAsync("Image committed.").ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    internal static string Json(CommitResult result) => JsonText.Build(w =>
    {
        w.WriteStartObject();
        w.WriteString("filename", result.FileName);
        w.WriteString("base", result.BaseFileName);
        w.WriteNumber("base-depth", result.BaseDepth);
        w.WriteNumber("data-bytes", result.DataBytes);
        w.WriteNumber("zero-bytes", result.ZeroBytes);
        if (result.BaseResizedTo is { } size)
        {
            w.WriteNumber("base-resized-to", size);
        }

        w.WriteBoolean("emptied", result.Emptied);
        w.WriteNumber("seconds", Math.Round(result.Elapsed.TotalSeconds, 3));
        w.WriteEndObject();
    });
}

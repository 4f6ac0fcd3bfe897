using System.CommandLine;
using ImgTool.Block.Host;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Rebase;

namespace ImgTool.Cli.Commands;

/// <summary>
/// rebase [-f fmt] [-t cache] [-T src_cache] [-p] [-u] [-U] -b backing_file [-F backing_fmt] filename: qemu-img
/// rebase's syntax; like qemu-img it prints nothing on success (--output=json prints what changed).
/// </summary>
internal static class RebaseCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var backingFile = new Option<string?>("-b") { Description = "The new backing file (relative to the image's folder); \"\" removes it, copying its data into the image", HelpName = "backing_file" };
        var backingFormat = new Option<string?>("-F") { Description = "The new backing file's format", HelpName = "backing_fmt" };
        var unsafeMode = new Option<bool>("-u") { Description = "Unsafe mode: only change the name, copy nothing" };
        var progress = new Option<bool>("-p") { Description = "Show progress" };
        var progressStyle = new Option<string?>("--progress") { Description = "Show progress as human text or as JSON lines on stderr", HelpName = "human|json" }
            .AcceptOnlyFromAmong("human", "json");
        var cache = CommonOptions.Cache("-t", "Cache mode for the image (default writeback)");
        var sourceCache = CommonOptions.Cache("-T", "Cache mode for the backing files (default writeback)");
        var forceShare = CommonOptions.ForceShare();
        var output = CommonOptions.Output();
        var file = new Argument<string>("filename");
        var command = new Command("rebase", "Change an image's backing file, copying what differs between the old and the new one")
        {
            format, backingFile, backingFormat, unsafeMode, progress, progressStyle, cache, sourceCache, forceShare, output, file,
        };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            string? backing = parse.GetValue(backingFile);
            bool isUnsafe = parse.GetValue(unsafeMode);
            if (backing is null && !isUnsafe)
            {
                throw new Block.Errors.InvalidOptionException("Must specify backing file (-b) or use unsafe mode (-u)");
            }

            ProgressPrinter? printer = ProgressPrinter.Create(context, parse.GetValue(progress), parse.GetValue(progressStyle));
            RebaseResult result = await new RebaseOperation(context.Opener).RunAsync(
                new RebaseOptions(
                    parse.GetValue(file)!,
                    backing ?? string.Empty,
                    parse.GetValue(format),
                    parse.GetValue(backingFormat),
                    isUnsafe,
                    CommonOptions.ParseCache(parse.GetValue(cache), CacheMode.Writeback),
                    CommonOptions.ParseSourceCache(parse.GetValue(sourceCache)),
                    parse.GetValue(forceShare),
                    CrashHook.FromEnvironment(CrashHook.RebaseVariable)),
                printer,
                cancellationToken).ConfigureAwait(false);
            printer?.Finish();
            if (parse.IsJson(output))
            {
                await context.Output.WriteLineAsync(Json(result)).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    internal static string Json(RebaseResult result) => JsonText.Build(w =>
    {
        w.WriteStartObject();
        w.WriteString("filename", result.FileName);
        w.WriteString("old-backing-filename", result.OldBackingFile);
        w.WriteString("backing-filename", result.NewBackingFile);
        w.WriteString("backing-filename-format", result.NewBackingFormat);
        w.WriteBoolean("unsafe", result.Unsafe);
        w.WriteNumber("copied-bytes", result.CopiedBytes);
        w.WriteNumber("seconds", Math.Round(result.Elapsed.TotalSeconds, 3));
        w.WriteEndObject();
    });
}

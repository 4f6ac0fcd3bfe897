using System.CommandLine;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Compare;

namespace ImgTool.Cli.Commands;

/// <summary>compare [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] filename1 filename2. Exit 0 identical, 1 different, 2 error.</summary>
internal static class CompareCommand
{
    public const int ErrorExitCode = 2;

    public static Command Build(CliContext context)
    {
        var formatA = CommonOptions.Format("-f", "Format of the first image");
        var formatB = CommonOptions.Format("-F", "Format of the second image");
        var strict = new Option<bool>("-s") { Description = "Strict: sizes and allocation must match too" };
        var progress = new Option<bool>("-p") { Description = "Show progress" };
        var progressStyle = new Option<string?>("--progress") { Description = "Show progress as human text or as JSON lines on stderr", HelpName = "human|json" }
            .AcceptOnlyFromAmong("human", "json");
        var forceShare = CommonOptions.ForceShare();
        var sourceCache = CommonOptions.Cache("-T", "Cache mode for both images (default writeback)");
        var output = CommonOptions.Output();
        var first = new Argument<string>("filename1");
        var second = new Argument<string>("filename2");
        var command = new Command("compare", "Compare the contents of two images") { formatA, formatB, strict, progress, progressStyle, forceShare, sourceCache, output, first, second };
        command.SetAction(
            context,
            async (parse, cancellationToken) =>
            {
                var options = new CompareOptions(parse.GetValue(first)!, parse.GetValue(second)!, parse.GetValue(formatA), parse.GetValue(formatB), parse.GetValue(strict), parse.GetValue(forceShare), CommonOptions.ParseSourceCache(parse.GetValue(sourceCache)));
                ProgressPrinter? printer = ProgressPrinter.Create(context, parse.GetValue(progress), parse.GetValue(progressStyle));
                CompareResult result = await new CompareOperation(context.Opener).RunAsync(options, printer, cancellationToken).ConfigureAwait(false);
                printer?.Finish();
                if (parse.IsJson(output))
                {
                    await context.Output.WriteLineAsync(Json(result)).ConfigureAwait(false);
                }
                else if (!parse.GetValue(context.Quiet))
                {
                    await context.Output.WriteAsync(Human(result)).ConfigureAwait(false);
                }

                return result.Identical ? 0 : 1;
            },
            ErrorExitCode);
        return command;
    }

    internal static string Human(CompareResult result)
    {
        // As qemu-img: the warning comes once the common part has compared equal, when the rest is checked.
        long common = Math.Min(result.SizeBytesA, result.SizeBytesB);
        bool pastCommonPart = result.Outcome == CompareOutcome.Identical || result.MismatchOffsetBytes >= common;
        string warning = result.SizesDiffer && result.Outcome != CompareOutcome.SizeMismatch && pastCommonPart ? "Warning: Image size mismatch!\n" : string.Empty;
        return warning + result.Outcome switch
        {
            CompareOutcome.Identical => "Images are identical.\n",
            CompareOutcome.ContentMismatch => $"Content mismatch at offset {result.MismatchOffsetBytes}!\n",
            CompareOutcome.AllocationMismatch => $"Strict mode: Offset {result.MismatchOffsetBytes} block status mismatch!\n",
            _ => "Strict mode: Image size mismatch!\n",
        };
    }

    private static string Json(CompareResult result) => JsonText.Build(w =>
    {
        w.WriteStartObject();
        w.WriteBoolean("identical", result.Identical);
        w.WriteString("result", result.Outcome switch
        {
            CompareOutcome.Identical => "identical",
            CompareOutcome.ContentMismatch => "content-mismatch",
            CompareOutcome.AllocationMismatch => "allocation-mismatch",
            _ => "size-mismatch",
        });
        w.WriteOptionalNumber("offset", result.MismatchOffsetBytes);
        w.WriteOptionalNumber("byte-offset", result.FirstDifferentByte);
        w.WriteNumber("size-1", result.SizeBytesA);
        w.WriteNumber("size-2", result.SizeBytesB);
        w.WriteEndObject();
    });
}

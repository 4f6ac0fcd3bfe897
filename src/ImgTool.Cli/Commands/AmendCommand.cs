using System.CommandLine;
using System.Globalization;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Amend;

namespace ImgTool.Cli.Commands;

/// <summary>
/// amend [--object objectdef] [-p] [-q] [-f fmt] [-t cache] [--output=ofmt] -o options filename: qemu-img amend's
/// syntax. Like qemu-img it prints nothing on success (unless --output=json asks for what changed).
/// </summary>
internal static class AmendCommand
{
    /// <summary>Hidden crash-test hook: the process dies (Environment.FailFast) right after the conversion's Nth write,
    /// truncation or flush, as a kill -9 would stop it there.</summary>
    internal const string CrashAfterVariable = "IMGTOOL_AMEND_CRASH_AFTER";

    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var options = CreateCommand.OptionList();
        var cache = CommonOptions.Cache("-t", "Cache mode for the image (default writeback)");
        var progress = new Option<bool>("-p") { Description = "Show progress (accepted for qemu-img compatibility; amend is quick)" };
        var force = new Option<bool>("--force") { Description = "Accepted for qemu-img compatibility" };
        var output = CommonOptions.Output();
        var file = new Argument<string>("filename");
        var command = new Command("amend", "Change an image's format options in place (-o format=qed|qcow2 converts between qcow2 and QED without copying data)")
        {
            format, options, cache, progress, force, output, file,
        };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            if (Block.Options.ImageOptions.IsHelpRequest(parse.GetValue(options) ?? []))
            {
                await context.Output.WriteAsync(HelpText).ConfigureAwait(false);
                return 0;
            }

            AmendResult result = await new AmendOperation(context.Opener).RunAsync(
                new AmendOptions(
                    parse.GetValue(file)!,
                    parse.GetValue(format),
                    parse.GetValue(options) ?? [],
                    CommonOptions.ParseCache(parse.GetValue(cache), Block.Host.CacheMode.Writeback),
                    CrashHook()),
                cancellationToken).ConfigureAwait(false);
            if (parse.IsJson(output))
            {
                await context.Output.WriteLineAsync(Json(result)).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    /// <summary>What `amend -o help` lists: the options implemented so far.</summary>
    internal const string HelpText =
        "Supported options:\n"
        + "  format=<str>           - Convert in place between qcow2 and qed (data clusters stay where they are)\n"
        + "  compat=<str>           - With format=qcow2: compatibility level (v2 / 0.10, v3 / 1.1)\n";

    private static Action<int>? CrashHook()
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable(CrashAfterVariable), NumberStyles.None, CultureInfo.InvariantCulture, out int limit))
        {
            return null;
        }

        return count =>
        {
            if (count >= limit)
            {
                Environment.FailFast($"{CrashAfterVariable}={limit}: stopping after write {count}");
            }
        };
    }

    internal static string Json(AmendResult result) => JsonText.Build(w =>
    {
        w.WriteStartObject();
        w.WriteString("filename", result.FileName);
        w.WriteString("format", result.Format);
        w.WriteNumber("seconds", Math.Round(result.Elapsed.TotalSeconds, 3));
        if (result.Conversion is { } c)
        {
            w.WriteStartObject("conversion");
            w.WriteString("from", c.FromFormat);
            w.WriteString("to", c.ToFormat);
            w.WriteNumber("cluster-size", c.ClusterSizeBytes);
            w.WriteNumber("data-clusters", c.DataClusters);
            w.WriteNumber("zero-clusters", c.ZeroClusters);
            w.WriteNumber("metadata-bytes-written", c.MetadataBytesWritten);
            w.WriteNumber("clusters-moved", c.ClustersMoved);
            w.WriteNumber("leaked-clusters", c.LeakedClusters);
            w.WriteNumber("file-length-before", c.FileLengthBefore);
            w.WriteNumber("file-length-after", c.FileLengthAfter);
            w.WriteEndObject();
        }

        w.WriteEndObject();
    });
}

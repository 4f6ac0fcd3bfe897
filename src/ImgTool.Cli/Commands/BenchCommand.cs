using System.CommandLine;
using System.Globalization;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Bench;

namespace ImgTool.Cli.Commands;

/// <summary>bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-n] [--no-drain] [-o offset]
/// [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename: qemu-img bench's syntax
/// and its two lines of output (or one JSON record with --output json).</summary>
internal static class BenchCommand
{
    public static Command Build(CliContext context)
    {
        var count = new Option<string?>("-c") { Description = "Requests to send (default 75000)", HelpName = "count" };
        var depth = new Option<string?>("-d") { Description = "Requests in flight at most (default 64)", HelpName = "depth" };
        var format = CommonOptions.Format();
        var flushInterval = new Option<string?>("--flush-interval") { Description = "With -w: flush after every this many requests", HelpName = "flush_interval" };
        var native = new Option<bool>("-n") { Description = "Native AIO, as qemu-img: requires -t none (imgtool's I/O is positional I/O on threads either way)" };
        var noDrain = new Option<bool>("--no-drain") { Description = "Do not wait for the requests in flight before each flush" };
        var offset = new Option<string?>("-o") { Description = "Offset of the first request (default 0)", HelpName = "offset" };
        var pattern = new Option<string?>("--pattern") { Description = "Byte the write requests carry (default 0)", HelpName = "pattern" };
        var bufferSize = new Option<string?>("-s") { Description = "Bytes per request (default 4k)", HelpName = "buffer_size" };
        var step = new Option<string?>("-S") { Description = "Distance between the starts of successive requests (default: the buffer size)", HelpName = "step_size" };
        var cache = CommonOptions.Cache("-t", "Cache mode (default writeback)");
        var write = new Option<bool>("-w") { Description = "Write instead of read (the image is changed)" };
        var forceShare = CommonOptions.ForceShare();
        var output = CommonOptions.Output();
        var file = new Argument<string>("filename");
        var command = new Command("bench", "Run a simple I/O benchmark on an image (qemu-img bench)")
        {
            count, depth, format, flushInterval, native, noDrain, offset, pattern, bufferSize, step, cache, write, forceShare, output, file,
        };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            CacheMode cacheMode = CommonOptions.ParseCache(parse.GetValue(cache), CacheMode.Writeback);
            if (parse.GetValue(native) && cacheMode is not (CacheMode.None or CacheMode.DirectSync))
            {
                throw new InvalidOptionException("aio=native was specified, but it requires cache.direct=on, which was not specified.", parse.GetValue(file));
            }

            var options = new BenchOptions(
                parse.GetValue(file)!,
                parse.GetValue(format),
                Int(parse.GetValue(count), 75000, "Invalid request count specified"),
                Int(parse.GetValue(depth), 64, "Invalid queue depth specified"),
                Size(parse.GetValue(offset), 0, "Invalid offset specified"),
                (int)Size(parse.GetValue(bufferSize), 4096, "Invalid buffer size specified", int.MaxValue),
                parse.GetValue(step) is { } s ? (int)Size(s, 0, "Invalid step_size specified", int.MaxValue) : null,
                parse.GetValue(write),
                Int(parse.GetValue(flushInterval), 0, "Invalid flush interval specified"),
                !parse.GetValue(noDrain),
                (byte)Int(parse.GetValue(pattern), 0, "Invalid pattern byte specified", byte.MaxValue),
                cacheMode,
                parse.GetValue(forceShare));
            BenchOperation.Validate(options);
            // -q: nothing but errors (qemu-img 7.2 prints its two lines even with -q).
            bool quiet = parse.GetValue(context.Quiet);
            bool json = parse.IsJson(output);
            if (!quiet && !json)
            {
                await context.Output.WriteAsync(Header(options)).ConfigureAwait(false);
            }

            BenchResult result = await new BenchOperation(context.Opener).RunAsync(options, cancellationToken).ConfigureAwait(false);
            if (json)
            {
                await context.Output.WriteLineAsync(Json(result)).ConfigureAwait(false);
            }
            else if (!quiet)
            {
                await context.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"Run completed in {result.Elapsed.TotalSeconds:0.000} seconds.")).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    /// <summary>qemu-img's lines before the run.</summary>
    internal static string Header(BenchOptions options) =>
        string.Create(CultureInfo.InvariantCulture, $"Sending {options.Count} {(options.Write ? "write" : "read")} requests, {options.BufferBytes} bytes each, {options.Depth} in parallel (starting at offset {options.OffsetBytes}, step size {options.EffectiveStepBytes})\n")
        + (options.FlushInterval > 0 ? string.Create(CultureInfo.InvariantCulture, $"Sending flush every {options.FlushInterval} requests\n") : string.Empty);

    /// <summary>Whole numbers as qemu-img reads them here (strtol with base 0): decimal, 0x hexadecimal, 0 octal.</summary>
    private static int Int(string? text, int fallback, string error, int max = int.MaxValue) =>
        text is null ? fallback
        : TryParseC(text, out long value) && value >= 0 && value <= max ? (int)value
        : throw new InvalidOptionException(error);

    private static bool TryParseC(string text, out long value)
    {
        value = 0;
        string digits = text.StartsWith('+') ? text[1..] : text;
        try
        {
            if (digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && digits.Length > 2)
            {
                return long.TryParse(digits[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
            }

            if (digits.Length > 1 && digits[0] == '0')
            {
                value = Convert.ToInt64(digits[1..], 8);
                return true;
            }
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            return false;
        }

        return digits.Length > 0 && char.IsAsciiDigit(digits[0]) && long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    private static long Size(string? text, long fallback, string error, long max = long.MaxValue) =>
        text is null ? fallback
        : SizeParser.TryParse(text, out long value) && value >= 0 && value <= max ? value
        : throw new InvalidOptionException(error);

    private static string Json(BenchResult result) => JsonText.Build(w =>
    {
        BenchOptions o = result.Options;
        double seconds = result.Elapsed.TotalSeconds;
        w.WriteStartObject();
        w.WriteString("filename", o.FileName);
        w.WriteString("operation", o.Write ? "write" : "read");
        w.WriteNumber("count", o.Count);
        w.WriteNumber("buffer-size", o.BufferBytes);
        w.WriteNumber("depth", o.Depth);
        w.WriteNumber("offset", o.OffsetBytes);
        w.WriteNumber("step", o.EffectiveStepBytes);
        w.WriteNumber("flush-interval", o.FlushInterval);
        w.WriteNumber("flushes", result.Flushes);
        w.WriteNumber("seconds", Math.Round(seconds, 6));
        w.WriteNumber("requests-per-second", seconds > 0 ? Math.Round(o.Count / seconds, 1) : 0);
        w.WriteNumber("bytes-per-second", seconds > 0 ? Math.Round((double)o.Count * o.BufferBytes / seconds) : 0);
        w.WriteEndObject();
    });
}

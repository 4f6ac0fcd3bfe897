using System.CommandLine;
using ImgTool.Block.Errors;
using ImgTool.Block.Options;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Dd;

namespace ImgTool.Cli.Commands;

/// <summary>dd [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output: qemu-img
/// dd's syntax, with dd(1)'s meaning of count (the blocks copied after the skipped ones; qemu-img 7.2 counts the
/// skipped blocks in it). Prints nothing, as qemu-img, unless --output json asks for what was copied.</summary>
internal static class DdCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format(description: "Input format (probed when not given)");
        var outputFormat = new Option<string?>("-O") { Description = "Output format (default raw)", HelpName = "output_fmt" };
        var forceShare = CommonOptions.ForceShare();
        var output = CommonOptions.Output();
        var operands = new Argument<string[]>("operand") { Arity = ArgumentArity.ZeroOrMore, Description = "bs=BYTES count=BLOCKS skip=BLOCKS if=INPUT of=OUTPUT" };
        var command = new Command("dd", "Copy a range of an image, counted in blocks as dd(1) counts them, into a new image")
        {
            format, outputFormat, forceShare, output, operands,
        };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            DdOptions options = Parse(parse.GetValue(operands) ?? []) with
            {
                InputFormat = parse.GetValue(format),
                OutputFormat = parse.GetValue(outputFormat) ?? "raw",
                ForceShare = parse.GetValue(forceShare),
            };
            DdResult result = await new DdOperation(context.Opener).RunAsync(options, cancellationToken).ConfigureAwait(false);
            if (parse.IsJson(output))
            {
                await context.Output.WriteLineAsync(Json(result)).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    /// <summary>The operands, as qemu-img reads them: KEY=VALUE, each key once at most; numbers with qemu's size
    /// suffixes (bs=1M, count=1k).</summary>
    internal static DdOptions Parse(IReadOnlyList<string> operands)
    {
        string? input = null;
        string? outputFile = null;
        long blockSize = 512;
        long? count = null;
        long skip = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string operand in operands)
        {
            int equals = operand.IndexOf('=', StringComparison.Ordinal);
            string key = equals < 0 ? operand : operand[..equals];
            if (equals < 0 || key is not ("bs" or "count" or "skip" or "if" or "of"))
            {
                throw new InvalidOptionException(operand.StartsWith('-') ? $"unrecognized option '{operand}'" : $"unrecognized operand {operand}");
            }

            if (!seen.Add(key))
            {
                throw new InvalidOptionException($"{key}= given more than once");
            }

            string value = operand[(equals + 1)..];
            switch (key)
            {
                case "bs": blockSize = Number(value, "bs"); break;
                case "count": count = Number(value, "count"); break;
                case "skip": skip = Number(value, "skip"); break;
                case "if": input = value.Length > 0 ? value : throw new InvalidOptionException("if= needs a file name"); break;
                default: outputFile = value.Length > 0 ? value : throw new InvalidOptionException("of= needs a file name"); break;
            }
        }

        if (input is null || outputFile is null)
        {
            throw new InvalidOptionException("Must specify both input and output files");
        }

        if (blockSize is < 1 or > DdOperation.MaxBlockSizeBytes)
        {
            throw new InvalidOptionException($"Invalid bs specified. Must be between 1 and {DdOperation.MaxBlockSizeBytes}.");
        }

        return new DdOptions(input, outputFile, BlockSizeBytes: blockSize, Count: count, Skip: skip);

        static long Number(string value, string what) => SizeParser.TryParse(value, out long bytes) && bytes >= 0
            ? bytes
            : throw new InvalidOptionException($"Invalid {what} specified: '{value}' (a number, with an optional k, M, G, T, P or E suffix)");
    }

    private static string Json(DdResult result) => JsonText.Build(w =>
    {
        w.WriteStartObject();
        w.WriteString("input", result.Input);
        w.WriteString("output", result.Output);
        w.WriteString("format", result.OutputFormat);
        w.WriteNumber("block-size", result.BlockSizeBytes);
        w.WriteNumber("blocks-copied", result.BlocksCopied);
        w.WriteNumber("bytes-copied", result.BytesCopied);
        w.WriteNumber("seconds", Math.Round(result.Elapsed.TotalSeconds, 3));
        w.WriteEndObject();
    });
}

using System.CommandLine;
using System.CommandLine.Parsing;
using ImgTool.Cli.Commands;
using ImgTool.Formats;

namespace ImgTool.Cli;

/// <summary>The imgtool command line: qemu-img's syntax over the operations.</summary>
public static class ImgToolCli
{
    public static string Version { get; } =
        typeof(ImgToolCli).Assembly.GetName().Version is { } v ? $"{v.Major}.{v.Minor}.{v.Build}" : "0.0.0";

    /// <summary>The process entry point (imgtool and imgtool-machine): the command line on stdout and stderr.</summary>
    public static Task<int> MainAsync(string[] args)
    {
        // Not Console.Out: on a terminal it would first write the terminal's keypad mode string (StandardStreams).
        var (output, error, binaryOutput) = StandardStreams.Open();
        return RunAsync(args, output, error, binaryOutput, Console.IsOutputRedirected);
    }

    public static Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, bool outputRedirected = true, CancellationToken cancellationToken = default) =>
        RunAsync(args, output, error, null, outputRedirected, cancellationToken);

    /// <param name="binaryOutput">Where `cat` writes file content (stdout's byte stream when null).</param>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, Stream? binaryOutput, bool outputRedirected = true, CancellationToken cancellationToken = default)
    {
        var context = new CliContext(output, error, outputRedirected, FormatRegistry.Default) { BinaryOutput = binaryOutput };
        var root = new RootCommand("imgtool: create, inspect, convert and verify disk images (qemu-img compatible)");
        root.Options.Add(context.Debug);
        root.Options.Add(context.Quiet);
        root.Options.Add(context.AllowOutsideExtents);
        root.Options.Add(context.Objects);
        root.Options.Add(context.ImageOpts);
        root.Subcommands.Add(CreateCommand.Build(context));
        root.Subcommands.Add(InfoCommand.Build(context));
        root.Subcommands.Add(ConvertCommand.Build(context));
        root.Subcommands.Add(CompareCommand.Build(context));
        root.Subcommands.Add(MapCommand.Build(context));
        root.Subcommands.Add(CheckCommand.Build(context));
        root.Subcommands.Add(SnapshotCommand.Build(context));
        root.Subcommands.Add(AmendCommand.Build(context));
        root.Subcommands.Add(CommitCommand.Build(context));
        root.Subcommands.Add(RebaseCommand.Build(context));
        root.Subcommands.Add(ResizeCommand.Build(context));
        root.Subcommands.Add(MeasureCommand.Build(context));
        root.Subcommands.Add(DdCommand.Build(context));
        root.Subcommands.Add(BenchCommand.Build(context));
        root.Subcommands.Add(BootCommand.Build(context));
        root.Subcommands.Add(InspectCommand.Build(context));
        root.Subcommands.Add(LsCommand.Build(context));
        root.Subcommands.Add(CatCommand.Build(context));
        root.Subcommands.Add(CopyOutCommand.Build(context));
        root.Subcommands.Add(DocsCommands.Completion(context));
        root.Subcommands.Add(DocsCommands.Man(context));

        if (root.Options.OfType<System.CommandLine.Help.HelpOption>().FirstOrDefault()?.Action is System.CommandLine.Help.HelpAction help)
        {
            // Given here: by default the help reads Console.WindowWidth, whose terminal set-up writes escape sequences.
            help.MaxWidth = context.OutputIsTerminal ? StandardStreams.TerminalColumns() : int.MaxValue;
        }

        if (args is ["--version" or "-V"])
        {
            await output.WriteLineAsync($"imgtool version {Version}").ConfigureAwait(false);
            return 0;
        }

        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // One line, as qemu-img does, instead of the parser's full help text; the most specific error first.
            ParseError shown = parse.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0];
            string message = UnknownOptions.DescribeCommand(parse, root) ?? UnknownOptions.Describe(parse, root)
                ?? FileArguments.Describe(parse)
                ?? string.Join(' ', shown.Message.Split(['\n', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(p => p.Trim()));
            await error.WriteLineAsync($"imgtool: {message}").ConfigureAwait(false);
            await error.WriteLineAsync("Try 'imgtool --help' for more information.").ConfigureAwait(false);
            return parse.CommandResult.Command.Name == "compare" ? 2 : 1;
        }

        var invocation = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        try
        {
            context.Opener = new ImageOpener(FormatRegistry.Default)
            {
                AllowOutsideFiles = parse.GetValue(context.AllowOutsideExtents),
                Secrets = SecretObjects.Parse(parse.GetValue(context.Objects) ?? []),
                ImageOpts = parse.GetValue(context.ImageOpts),
            };
        }
        catch (Block.Errors.ImgToolException e)
        {
            await error.WriteLineAsync(e.FileName is null ? $"imgtool: {e.Message}" : $"imgtool: {e.FileName}: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        return await parse.InvokeAsync(invocation, cancellationToken).ConfigureAwait(false);
    }
}

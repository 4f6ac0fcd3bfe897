using System.CommandLine;
using ImgTool.Formats;

namespace ImgTool.Cli;

/// <summary>What every command needs: the output writers, whether stdout is a terminal, and the opener.</summary>
internal sealed class CliContext(TextWriter output, TextWriter error, bool outputRedirected, ImageOpener opener)
{
    public TextWriter Output { get; } = output;

    public TextWriter Error { get; } = error;

    public bool OutputIsTerminal { get; } = !outputRedirected;

    public ImageOpener Opener { get; } = opener;

    /// <summary>--debug: errors carry their stack trace.</summary>
    public Option<bool> Debug { get; } = new("--debug") { Description = "Print stack traces with errors", Recursive = true };

    public Option<bool> Quiet { get; } = new("-q", "--quiet") { Description = "Quiet mode: print nothing but errors", Recursive = true };
}

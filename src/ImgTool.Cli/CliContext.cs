using System.CommandLine;
using ImgTool.Formats;

namespace ImgTool.Cli;

/// <summary>What every command needs: the output writers, whether stdout is a terminal, and the opener.</summary>
internal sealed class CliContext(TextWriter output, TextWriter error, bool outputRedirected, FormatRegistry registry)
{
    public TextWriter Output { get; } = output;

    public TextWriter Error { get; } = error;

    public bool OutputIsTerminal { get; } = !outputRedirected;

    /// <summary>Set once the command line is parsed: it depends on global options.</summary>
    public ImageOpener Opener { get; set; } = new(registry);

    /// <summary>--allow-outside-extents: a VMDK descriptor may name extent files outside its folder.</summary>
    public Option<bool> AllowOutsideExtents { get; } = new("--allow-outside-extents") { Description = "Let an image name files outside its own folder (VMDK extents, a qcow2 external data file)", Recursive = true };

    /// <summary>--debug: errors carry their stack trace.</summary>
    public Option<bool> Debug { get; } = new("--debug") { Description = "Print stack traces with errors", Recursive = true };

    public Option<bool> Quiet { get; } = new("-q", "--quiet") { Description = "Quiet mode: print nothing but errors", Recursive = true };
}

using System.CommandLine;
using ImgTool.Formats;

namespace ImgTool.Cli;

/// <summary>What every command needs: the output writers, whether stdout is a terminal, and the opener.</summary>
internal sealed class CliContext(TextWriter output, TextWriter error, bool outputRedirected, FormatRegistry registry)
{
    public TextWriter Output { get; } = output;

    public TextWriter Error { get; } = error;

    /// <summary>Where binary output goes (cat): stdout's byte stream, or the caller's stream in tests.</summary>
    public Stream? BinaryOutput { get; init; }

    public bool OutputIsTerminal { get; } = !outputRedirected;

    /// <summary>Set once the command line is parsed: it depends on global options.</summary>
    public ImageOpener Opener { get; set; } = new(registry);

    /// <summary>--allow-outside-extents: a VMDK descriptor may name extent files outside its folder.</summary>
    public Option<bool> AllowOutsideExtents { get; } = new("--allow-outside-extents") { Description = "Let an image name files outside its own folder (VMDK extents, a qcow2 external data file)", Recursive = true };

    /// <summary>--debug: errors carry their stack trace.</summary>
    public Option<bool> Debug { get; } = new("--debug") { Description = "Print stack traces with errors", Recursive = true };

    /// <summary>--object secret,id=ID,data=TEXT|file=PATH (repeatable): passwords for encrypted images.</summary>
    public Option<string[]> Objects { get; } = new("--object") { Description = "Define a secret: secret,id=ID,data=TEXT or secret,id=ID,file=PATH (repeatable)", HelpName = "objectdef", Recursive = true, AllowMultipleArgumentsPerToken = false };

    /// <summary>--image-opts: filename arguments are option strings (driver=qcow2,file.filename=X,encrypt.key-secret=ID).</summary>
    public Option<bool> ImageOpts { get; } = new("--image-opts") { Description = "Treat filename arguments as option strings (driver=...,file.filename=...,encrypt.key-secret=...)", Recursive = true };

    public Option<bool> Quiet { get; } = new("-q", "--quiet") { Description = "Quiet mode: print nothing but errors", Recursive = true };
}

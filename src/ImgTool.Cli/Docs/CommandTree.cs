using System.CommandLine;
using System.CommandLine.Help;

namespace ImgTool.Cli.Docs;

/// <summary>
/// The visible commands and options as the parser defines them, for the man page and the shell completions, so
/// that neither can drift from `--help` (both are generated from this at install time).
/// </summary>
internal static class CommandTree
{
    /// <summary>The root's options that every command takes (recursive ones) and its own, without --help/--version.</summary>
    public static IEnumerable<Option> GlobalOptions(RootCommand root) =>
        root.Options.Where(option => !option.Hidden && option is not HelpOption and not VersionOption);

    public static IEnumerable<Command> Commands(RootCommand root) => root.Subcommands.Where(command => !command.Hidden);

    public static IEnumerable<Option> OptionsOf(Command command) => command.Options.Where(option => !option.Hidden && option is not HelpOption);

    /// <summary>Every name an option answers to (-f, --format, ...), the primary one first.</summary>
    public static IEnumerable<string> NamesOf(Option option) => option.Aliases.Prepend(option.Name).Distinct();

    /// <summary>Whether the option takes a value (a flag does not).</summary>
    public static bool TakesValue(Option option) => option.ValueType != typeof(bool);

    /// <summary>The options whose value is an image format name.</summary>
    public static bool TakesFormat(Option option) => NamesOf(option).Any(name => name is "-f" or "-O" or "-F");

    /// <summary>"create [options] &lt;filename&gt; &lt;size&gt;": the synopsis line of a command.</summary>
    public static string Synopsis(Command command) =>
        string.Join(' ', new[] { command.Name, "[options]" }.Concat(command.Arguments.Where(a => !a.Hidden).Select(a => $"<{a.Name}>")));
}

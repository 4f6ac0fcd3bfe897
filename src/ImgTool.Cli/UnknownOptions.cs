using System.CommandLine;
using System.CommandLine.Parsing;

namespace ImgTool.Cli;

/// <summary>
/// Names a misspelt option. The parser takes an unknown "--backing-chian" for the FILE argument and then blames
/// the real file name ("Unrecognized command or argument 'ov.qcow2'"); the token that looks like an option but
/// matched none is the one to name, with the nearest option the command has.
/// </summary>
internal static class UnknownOptions
{
    /// <summary>
    /// "unknown option '--x' (did you mean '--y'?)" for the first such token, or null when there is none. Only long
    /// names get a suggestion: any one-letter option is one edit from every other.
    /// </summary>
    public static string? Describe(ParseResult parse, RootCommand root)
    {
        Token? unknown = parse.Tokens.FirstOrDefault(token => token.Type == TokenType.Argument && LooksLikeOption(token.Value));
        if (unknown is null)
        {
            return null;
        }

        string name = unknown.Value.Split('=', 2)[0];
        return Describe(name, parse.CommandResult.Command, root);
    }

    /// <summary>"unknown option '--x' (did you mean '--y'?)" for an option name the command does not have.</summary>
    public static string Describe(string name, Command command, RootCommand root)
    {
        IEnumerable<string> known = command.Options.Concat(root.Options.Where(option => option.Recursive))
            .SelectMany(option => option.Aliases.Append(option.Name));
        return Nearest(name, known) is { } nearest ? $"unknown option '{name}' (did you mean '{nearest}'?)" : $"unknown option '{name}'";
    }

    /// <summary>
    /// "unknown command 'conver' (did you mean 'convert'?)" when the first word after imgtool is no command, else null.
    /// </summary>
    public static string? DescribeCommand(ParseResult parse, RootCommand root)
    {
        if (parse.CommandResult.Command != root || parse.Tokens.Count == 0 || parse.Tokens[0] is not { Type: TokenType.Argument } first || LooksLikeOption(first.Value))
        {
            return null;
        }

        string? nearest = Nearest(first.Value, root.Subcommands.Where(command => !command.Hidden).Select(command => command.Name));
        return nearest is null ? $"unknown command '{first.Value}'" : $"unknown command '{first.Value}' (did you mean '{nearest}'?)";
    }

    /// <summary>The closest candidate within a quarter of the word's length in edits (one at least), if any.</summary>
    private static string? Nearest(string word, IEnumerable<string> candidates) =>
        candidates.Distinct().Select(candidate => (candidate, distance: Distance(word, candidate)))
            .Where(pair => word.Length > 3 && pair.distance <= Math.Max(1, word.Length / 4))
            .OrderBy(pair => pair.distance).ThenBy(pair => pair.candidate, StringComparer.Ordinal)
            .Select(pair => pair.candidate).FirstOrDefault();

    /// <summary>-x or --xy, but not "-" (stdin), "--" or a negative size such as resize's "-1G".</summary>
    private static bool LooksLikeOption(string value) =>
        value.Length > 1 && value[0] == '-' && value != "--" && !char.IsDigit(value[1]) && !(value[1] == '-' && value.Length == 2);

    /// <summary>Levenshtein distance (insertions, deletions, substitutions).</summary>
    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j], current[j - 1]) + 1);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}

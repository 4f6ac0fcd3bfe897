using System.CommandLine;
using System.CommandLine.Parsing;

namespace ImgTool.Cli;

/// <summary>
/// A missing or surplus argument in qemu-img's words. The parser says "Required argument missing for command:
/// 'info'." and "Required argument missing for option: '-f'.", which name neither what is missing nor what qemu-img
/// users know; qemu-img says "Expecting one image file name" and "missing argument for option '-f'" (qemu-img.c and
/// getopt), and scripts and users match on those.
/// </summary>
internal static class FileArguments
{
    /// <summary>The message for the first missing or surplus argument, or null when the errors are about something else.</summary>
    public static string? Describe(ParseResult parse)
    {
        foreach (ParseError error in parse.Errors)
        {
            switch (error.SymbolResult)
            {
                case OptionResult option when IsMissing(option.Option.Arity, option.Tokens.Count):
                    return MissingOptionValue(option);
                case ArgumentResult { Parent: OptionResult option } argument when IsMissing(argument.Argument.Arity, argument.Tokens.Count):
                    return MissingOptionValue(option);
                case ArgumentResult argument when IsMissing(argument.Argument.Arity, argument.Tokens.Count):
                    return Expecting(parse);
                case CommandResult command when command.Command.Arguments.Count > 0 && command.Tokens.Count < command.Command.Arguments.Sum(a => a.Arity.MinimumNumberOfValues):
                    return Expecting(parse);
            }
        }

        // A word more than the command takes ("info a b"): qemu-img counts the file names, it does not call it unknown.
        // A word that looks like an option is UnknownOptions' to name.
        bool surplusWord = parse.UnmatchedTokens.Count > 0 && parse.UnmatchedTokens.All(token => !token.StartsWith('-'));
        return surplusWord && parse.CommandResult.Command.Arguments.Count > 0 ? Expecting(parse) : null;
    }

    private static bool IsMissing(ArgumentArity arity, int tokens) => tokens < arity.MinimumNumberOfValues;

    private static string MissingOptionValue(OptionResult option) =>
        $"missing argument for option '{option.IdentifierToken?.Value ?? option.Option.Name}'";

    /// <summary>What qemu-img says for each command when its file names are missing or too many; for commands qemu-img
    /// does not have, the same kind of sentence.</summary>
    private static string Expecting(ParseResult parse)
    {
        CommandResult result = parse.CommandResult;
        return result.Command.Name switch
        {
            "compare" => "Expecting two image file names",
            "create" => "Expecting image file name",
            "convert" => "Must specify image file name",
            "resize" => "Not enough arguments",
            "measure" => "At most one filename argument is allowed.",
            // qemu-img checks -o before the file name.
            "amend" when !result.Children.OfType<OptionResult>().Any(option => option.Option.Name == "-o") => "Must specify options (-o)",
            "ls" or "cat" => "Expecting IMAGE[:PARTITION]:/PATH",
            "copy-out" => "Expecting IMAGE[:PARTITION]:/PATH and a destination",
            _ => "Expecting one image file name",
        };
    }
}

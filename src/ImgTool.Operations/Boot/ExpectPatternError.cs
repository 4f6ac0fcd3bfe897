using System.Text;
using System.Text.RegularExpressions;

namespace ImgTool.Operations.Boot;

/// <summary>
/// What is wrong with an --expect pattern, in words. The runtime's own message is not usable: imgtool's NativeAOT
/// build drops exception message resources, so it reads "MakeException, (, 1, InsufficientClosingParentheses".
/// </summary>
internal static class ExpectPatternError
{
    public static string Describe(RegexParseException e)
    {
        string what = e.Error switch
        {
            RegexParseError.InsufficientClosingParentheses => "a '(' is never closed",
            RegexParseError.InsufficientOpeningParentheses => "a ')' has no '(' to close",
            RegexParseError.UnterminatedBracket => "a '[' character class is never closed",
            RegexParseError.QuantifierAfterNothing => "a quantifier (*, +, ? or {n}) follows nothing",
            RegexParseError.NestedQuantifiersNotParenthesized => "two quantifiers in a row (put the first in parentheses)",
            RegexParseError.UnescapedEndingBackslash => "the pattern ends in a lone backslash",
            RegexParseError.UnrecognizedEscape => "an unknown escape sequence",
            RegexParseError.ReversedCharacterRange => "a character range runs backwards ([z-a])",
            RegexParseError.ReversedQuantifierRange => "a {n,m} quantifier has n greater than m",
            RegexParseError.InsufficientOrInvalidHexDigits => "a \\x or \\u escape lacks hex digits",
            _ => Words(e.Error.ToString()),
        };
        return e.Offset > 0 ? $"{what} (at offset {e.Offset})" : what;
    }

    /// <summary>The enum name as lower-case words: "UnterminatedComment" is "unterminated comment".</summary>
    private static string Words(string name)
    {
        var text = new StringBuilder();
        foreach (char c in name)
        {
            if (char.IsUpper(c) && text.Length > 0)
            {
                text.Append(' ');
            }

            text.Append(char.ToLowerInvariant(c));
        }

        return text.ToString();
    }
}

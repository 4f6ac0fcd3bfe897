using System.CommandLine;
using System.Text;

namespace ImgTool.Cli.Docs;

/// <summary>imgtool(1) in roff (man(7) macros), generated from the command definitions.</summary>
internal static class ManPage
{
    public static string Render(RootCommand root, string version, IEnumerable<string> formats)
    {
        var roff = new StringBuilder();
        roff.AppendLine($".TH IMGTOOL 1 \"\" \"imgtool {Escape(version)}\" \"User Commands\"");
        roff.AppendLine(".SH NAME");
        string summary = (root.Description ?? "").Replace("imgtool: ", "", StringComparison.Ordinal);
        roff.AppendLine($"imgtool \\- {Escape(summary)}");
        roff.AppendLine(".SH SYNOPSIS");
        roff.AppendLine(".B imgtool");
        roff.AppendLine("\\fICOMMAND\\fR [\\fIoptions\\fR] \\fIARGUMENTS\\fR");
        roff.AppendLine(".SH DESCRIPTION");
        roff.AppendLine("imgtool creates, inspects, converts, checks and repairs disk images, with the syntax and the JSON output of");
        roff.AppendLine(".BR qemu-img (1),");
        roff.AppendLine("and boots an image on its own x86 PC to prove that it still works.");
        roff.AppendLine($"Formats: {Escape(string.Join(", ", formats))}.");
        roff.AppendLine(".SH GLOBAL OPTIONS");
        foreach (var option in CommandTree.GlobalOptions(root))
        {
            AppendOption(roff, option);
        }

        roff.AppendLine(".SH COMMANDS");
        foreach (var command in CommandTree.Commands(root))
        {
            roff.AppendLine($".SS \"imgtool {Escape(CommandTree.Synopsis(command))}\"");
            roff.AppendLine(Escape(command.Description ?? ""));
            foreach (var argument in command.Arguments.Where(a => !a.Hidden && !string.IsNullOrEmpty(a.Description)))
            {
                roff.AppendLine(".TP");
                roff.AppendLine($".I {Escape(argument.Name)}");
                roff.AppendLine(Escape(argument.Description!));
            }

            foreach (var option in CommandTree.OptionsOf(command))
            {
                AppendOption(roff, option);
            }
        }

        roff.AppendLine(".SH EXIT STATUS");
        roff.AppendLine("0 on success, 1 on an error (a one-line message on standard error); compare exits 1 when the images differ and 2 on an error, as qemu-img does.");
        roff.AppendLine(".SH SEE ALSO");
        roff.AppendLine(".BR qemu-img (1)");
        return roff.ToString();
    }

    private static void AppendOption(StringBuilder roff, Option option)
    {
        string names = string.Join(", ", CommandTree.NamesOf(option).Select(name => $"\\fB{Escape(name)}\\fR"));
        string value = CommandTree.TakesValue(option) ? $" \\fI{Escape(option.HelpName ?? "value")}\\fR" : "";
        roff.AppendLine(".TP");
        roff.AppendLine(names + value);
        roff.AppendLine(Escape(option.Description ?? ""));
    }

    /// <summary>Text safe in roff: backslashes and hyphens escaped, no line starting with a control character.</summary>
    internal static string Escape(string text)
    {
        string escaped = text.Replace("\\", "\\e", StringComparison.Ordinal).Replace("-", "\\-", StringComparison.Ordinal)
            .Replace("\r", "", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
        return escaped.StartsWith('.') || escaped.StartsWith('\'') ? "\\&" + escaped : escaped;
    }
}

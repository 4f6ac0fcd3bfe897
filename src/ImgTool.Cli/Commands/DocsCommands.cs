using System.CommandLine;
using ImgTool.Block.Errors;
using ImgTool.Cli.Docs;
using ImgTool.Formats;

namespace ImgTool.Cli.Commands;

/// <summary>
/// `imgtool completion bash|zsh` and `imgtool man`: the completion scripts and the man page, generated from the
/// command definitions the parser uses (tools/install.sh installs their output).
/// </summary>
internal static class DocsCommands
{
    public static Command Completion(CliContext context)
    {
        var shell = new Argument<string>("shell") { Description = "bash or zsh" };
        var command = new Command("completion", "Print the shell completion script for bash or zsh") { shell };
        command.SetAction(context, async (parse, _) =>
        {
            var root = (RootCommand)parse.RootCommandResult.Command;
            IEnumerable<string> formats = FormatNames();
            string script = parse.GetValue(shell) switch
            {
                "bash" => CompletionScript.Bash(root, formats),
                "zsh" => CompletionScript.Zsh(root, formats),
                var other => throw new InvalidOptionException($"unknown shell '{other}': use bash or zsh"),
            };
            await context.Output.WriteAsync(script).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    public static Command Man(CliContext context)
    {
        var command = new Command("man", "Print the imgtool(1) manual page (roff)") { Hidden = true };
        command.SetAction(context, async (parse, _) =>
        {
            var root = (RootCommand)parse.RootCommandResult.Command;
            await context.Output.WriteAsync(ManPage.Render(root, ImgToolCli.Version, FormatNames())).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    private static IEnumerable<string> FormatNames() => FormatRegistry.Default.Drivers.Select(driver => driver.Name).Distinct();
}

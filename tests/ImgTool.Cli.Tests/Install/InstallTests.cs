using System.Text.RegularExpressions;

namespace ImgTool.Cli.Tests.Install;

/// <summary>
/// tools/install.sh --prefix DIR (issue 18): the installed imgtool runs from another folder, bash loads its completion,
/// man renders its page, and every command and option `--help` shows is in the man page and in both completions
/// (they are generated from the same command definitions, so this fails if one of them stops following them).
/// Installs the binaries tools/build.sh left in out/bin (tools/test.sh builds them first).
/// </summary>
public sealed partial class InstallTests : IDisposable
{
    private readonly string _prefix = Path.Combine(Path.GetTempPath(), $"imgtool-install-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_prefix))
        {
            Directory.Delete(_prefix, recursive: true);
        }
    }

    [Fact]
    public void Install_to_a_prefix_gives_a_working_binary_completions_and_a_man_page_and_uninstall_removes_them()
    {
        string root = ImgTool.TestSupport.LinuxFixtureCache.RepositoryRoot;
        HostProcess.Run(Path.Combine(root, "tools", "install.sh"), ["--prefix", _prefix, "--no-build"], root);
        string imgtool = Path.Combine(_prefix, "bin", "imgtool");

        string version = HostProcess.Run(imgtool, ["--version"], Path.GetTempPath());
        Assert.StartsWith("imgtool version ", version);

        string bashCompletion = Path.Combine(_prefix, "share", "bash-completion", "completions", "imgtool");
        string complete = HostProcess.Run("bash", ["-c", $"source '{bashCompletion}' && complete -p imgtool"], Path.GetTempPath());
        Assert.Contains("-F _imgtool imgtool", complete);

        string manPage = Path.Combine(_prefix, "share", "man", "man1", "imgtool.1");
        string rendered = HostProcess.Run("man", ["-l", manPage], Path.GetTempPath(), ("MANPAGER", "cat"), ("MANWIDTH", "200"));
        Assert.Contains("IMGTOOL(1)", rendered);
        Assert.Contains("imgtool convert [options]", rendered);

        // Every command and every option name in --help, in the page and in both scripts.
        string roff = File.ReadAllText(manPage).Replace("\\-", "-", StringComparison.Ordinal);
        string bash = File.ReadAllText(bashCompletion);
        string zsh = File.ReadAllText(Path.Combine(_prefix, "share", "zsh", "site-functions", "_imgtool"));
        string help = HostProcess.Run(imgtool, ["--help"], Path.GetTempPath());
        string[] commands = Section(help, "Commands:").Select(line => line.Split(' ', 2)[0]).ToArray();
        Assert.Contains("convert", commands);
        Assert.Contains("boot", commands);
        foreach (string command in commands)
        {
            Assert.Contains($"imgtool {command} [options]", roff);
            Assert.Contains($"{command}) opts=", bash);
            Assert.Contains($"'{command}:", zsh);
            string commandHelp = HostProcess.Run(imgtool, [command, "--help"], Path.GetTempPath());
            string[] options = Section(commandHelp, "Options:").SelectMany(OptionNames).Where(name => name is not ("-?" or "-h" or "--help")).ToArray();
            Assert.NotEmpty(options);
            foreach (string option in options)
            {
                Assert.True(roff.Contains($"\\fB{option}\\fR", StringComparison.Ordinal), $"{command} {option} is not in the man page");
                Assert.Matches($"(?m)^\\s+{Regex.Escape(command)}\\) opts=\"(.* )?{Regex.Escape(option)}( |\")", bash);
                Assert.True(zsh.Contains($"'{option}[", StringComparison.Ordinal), $"{command} {option} is not in the zsh completion");
            }
        }

        HostProcess.Run(Path.Combine(root, "tools", "install.sh"), ["--prefix", _prefix, "--uninstall"], root);
        Assert.False(File.Exists(imgtool) || File.Exists(manPage) || File.Exists(bashCompletion) || Directory.Exists(Path.Combine(_prefix, "lib", "imgtool")));
    }

    /// <summary>The lines of a help section ("Options:", "Commands:"), trimmed, up to the next blank line.</summary>
    private static IEnumerable<string> Section(string help, string title) =>
        help.Split('\n').SkipWhile(line => line.Trim() != title).Skip(1).TakeWhile(line => line.Trim().Length > 0).Select(line => line.Trim());

    /// <summary>"-U, --force-share  Open ..." gives -U and --force-share.</summary>
    private static IEnumerable<string> OptionNames(string line) =>
        OptionNamesPattern().Match(line).Groups[1].Value.Split(", ").Select(name => name.Split(' ')[0]).Where(name => name.StartsWith('-'));

    [GeneratedRegex(@"^(-[^ ,]*(?:, -[^ ,]*)*)")]
    private static partial Regex OptionNamesPattern();
}

using System.Text.RegularExpressions;

namespace ImgTool.Cli.Tests;

/// <summary>
/// Issue 19 item 11: README.md says what is true of this repository: no path outside it, the SDK the projects
/// target, the start-up figures once, the boot options `imgtool boot --help` has, and the qemu-img commands that
/// imgtool does not have yet (checked against qemu-img's own list).
/// </summary>
public sealed partial class ReadmeTests
{
    private static readonly string Root = RepositoryRoot();
    private static readonly string Readme = File.ReadAllText(Path.Combine(Root, "README.md"));

    [Fact]
    public void The_readme_names_no_path_outside_the_repository()
    {
        Assert.Empty(OutsidePath().Matches(Readme).Select(match => match.Value));
    }

    [Fact]
    public void The_readme_names_the_sdk_the_projects_target()
    {
        string props = File.ReadAllText(Path.Combine(Root, "Directory.Build.props"));
        string major = TargetFramework().Match(props).Groups[1].Value;

        Assert.False(string.IsNullOrEmpty(major), "Directory.Build.props names no netN.0 target framework");
        Assert.Contains($".NET {major} SDK", Readme, StringComparison.Ordinal);
        Assert.Contains($"dotnet-sdk-{major}.0", Readme, StringComparison.Ordinal);
        Assert.Contains($"--channel {major}.0", Readme, StringComparison.Ordinal);
    }

    /// <summary>The start-up figures appear in one paragraph of the readme and in no script or project comment, so
    /// they cannot disagree with each other (install.sh said ~70 ms for the JIT start where the readme said 130).</summary>
    [Fact]
    public void The_start_up_figures_are_stated_once()
    {
        string[] paragraphs = Readme.Split("\n\n");

        Assert.Single(paragraphs, paragraph => Milliseconds().IsMatch(paragraph) && paragraph.Contains("JIT", StringComparison.Ordinal));
        string[] elsewhere = [Path.Combine(Root, "tools", "install.sh"), Path.Combine(Root, "tools", "build.sh"), Path.Combine(Root, "src", "ImgTool.Cli", "ImgTool.Cli.csproj")];
        Assert.All(elsewhere, file => Assert.DoesNotMatch(StartUpFigure(), File.ReadAllText(file)));
    }

    /// <summary>The two set-up commands stay as they are: scripts that exist, run from the repository root.</summary>
    [Theory]
    [InlineData("tools/sample.sh")]
    [InlineData("tools/test.sh")]
    public void The_setup_commands_exist(string script)
    {
        Assert.Matches(new Regex("^" + Regex.Escape(script) + " +# ", RegexOptions.Multiline), Readme);
        Assert.True(File.Exists(Path.Combine(Root, script)), script);
    }

    [Fact]
    public async Task The_boot_section_names_every_option_boot_help_lists()
    {
        RunResult help = await Tools.Imgtool("boot", "--help");
        string section = Section("## Boot testing");
        // Global options (every command has them) are not the boot section's to explain.
        string[] global = ["-h", "--help", "--debug", "--quiet", "--allow-outside-extents", "--object", "--image-opts"];

        string[] options = HelpOption().Matches(help.Out).Select(match => match.Groups[1].Value).Where(option => !global.Contains(option)).ToArray();

        Assert.Contains("--writable", options);
        Assert.All(options, option => Assert.Contains($"`{option}", section, StringComparison.Ordinal));
        Assert.Contains("`seabios`", section, StringComparison.Ordinal);
        Assert.Contains("`--expect` is optional", section, StringComparison.Ordinal);
    }

    /// <summary>qemu-img's commands that imgtool lacks are the ones the readme lists as not there yet, no more, no fewer.</summary>
    [Fact]
    public async Task The_readme_lists_exactly_the_qemu_img_commands_imgtool_lacks()
    {
        RunResult qemu = await Tools.QemuImg("--help");
        RunResult ours = await Tools.Imgtool("--help");
        string syntax = qemu.Out[qemu.Out.IndexOf("Command syntax:", StringComparison.Ordinal)..qemu.Out.IndexOf("Command parameters:", StringComparison.Ordinal)];
        HashSet<string> qemuCommands = [.. QemuCommand().Matches(syntax).Select(match => match.Groups[1].Value)];
        HashSet<string> ourCommands = [.. OurCommand().Matches(ours.Out).Select(match => match.Groups[1].Value)];
        Assert.Contains("convert", qemuCommands);
        Assert.Contains("convert", ourCommands);

        string notThere = Readme.Split('\n').Single(line => line.StartsWith("Not there yet:", StringComparison.Ordinal));
        HashSet<string> listed = [.. Regex.Matches(notThere, "`([a-z]+)`").Select(match => match.Groups[1].Value)];

        Assert.Equal(qemuCommands.Except(ourCommands).Order(), listed.Order());
    }

    private static string Section(string heading)
    {
        int start = Readme.IndexOf(heading + "\n", StringComparison.Ordinal);
        Assert.True(start >= 0, heading);
        int end = Readme.IndexOf("\n## ", start + heading.Length, StringComparison.Ordinal);
        return end < 0 ? Readme[start..] : Readme[start..end];
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ImgTool.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("no ImgTool.sln above the test binaries");
    }

    /// <summary>A parent-relative path, or an absolute host path (guest paths such as /dev/vda are the guest's).</summary>
    [GeneratedRegex(@"(?<![\w.])\.\./|(?<![\w.:/])/(work|usr|home|opt|etc|var|root|srv|mnt|tmp)/")]
    private static partial Regex OutsidePath();

    [GeneratedRegex(@"<TargetFramework>net(\d+)\.0</TargetFramework>")]
    private static partial Regex TargetFramework();

    [GeneratedRegex(@"\b\d+ ms\b")]
    private static partial Regex Milliseconds();

    /// <summary>A start-up time in a comment: "~5 ms to start", "info in ~10 ms", "costs ~70 ms".</summary>
    [GeneratedRegex(@"~\s*\d+ ms")]
    private static partial Regex StartUpFigure();

    /// <summary>An option's long name at the start of a help line ("  -m, --memory &lt;size&gt;  Guest RAM size").</summary>
    [GeneratedRegex(@"^\s+(?:-\S, )?(--[a-z-]+|-[A-Za-z])\b", RegexOptions.Multiline)]
    private static partial Regex HelpOption();

    [GeneratedRegex(@"^  ([a-z]+) ", RegexOptions.Multiline)]
    private static partial Regex QemuCommand();

    [GeneratedRegex(@"^  ([a-z-]+) <", RegexOptions.Multiline)]
    private static partial Regex OurCommand();
}

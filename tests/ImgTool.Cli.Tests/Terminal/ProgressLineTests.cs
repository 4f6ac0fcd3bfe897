using System.Globalization;
using System.Text.RegularExpressions;

namespace ImgTool.Cli.Tests.Terminal;

/// <summary>
/// Issue 19 item 3: the live `-p` line on a terminal only goes up, with eight requests in flight, and ends at
/// 100.00 (it went 51.56 -> 100.00 -> 81.25 -> 78.13 for qcow2 -> vmdk, 0.78 -> 2.34 -> 1.56 for vpc).
/// </summary>
public sealed partial class ProgressLineTests : IDisposable
{
    private readonly TempDir _directory = new();

    public void Dispose() => _directory.Dispose();

    [Theory]
    [InlineData("vmdk", new string[0])]
    [InlineData("vpc", new string[0])]
    [InlineData("vmdk", new[] { "-W" })]
    [InlineData("qcow2", new[] { "-c" })]
    public async Task The_progress_line_never_goes_back_and_ends_at_100(string format, string[] extra)
    {
        await MakeSourceAsync();

        TerminalResult result = await TerminalRun.ImgtoolAsync(_directory.Path, ["convert", "-p", "-m", "8", .. extra, "-O", format, "src.qcow2", "dst." + format]);

        Assert.True(result.ExitCode == 0, result.ToString());
        double[] percents = Percent().Matches(result.Text).Select(match => double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.True(percents.Length > 2, result.ToString());
        for (int i = 1; i < percents.Length; i++)
        {
            Assert.True(percents[i] >= percents[i - 1], $"progress went back: {string.Join(" -> ", percents)}");
        }

        Assert.Equal(100.00, percents[^1]);
    }

    /// <summary>64 MiB with data in several places and holes between them, so many 2 MiB requests are in flight.</summary>
    private async Task MakeSourceAsync()
    {
        string source = _directory.File("src.qcow2");
        RunResult created = await Tools.QemuImg("create", "-q", "-f", "qcow2", source, "64M");
        Assert.True(created.ExitCode == 0, created.ToString());
        RunResult written = await Tools.Qemu("qemu-io", "-c", "write -P 1 0 20M", "-c", "write -P 2 30M 10M", "-c", "write -P 3 50M 3M", "-c", "write -P 4 60M 1M", source);
        Assert.True(written.ExitCode == 0, written.ToString());
    }

    [GeneratedRegex(@"\(([0-9]+\.[0-9]{2})/100%\)")]
    private static partial Regex Percent();
}

using System.Text.Json;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// Arguments a qemu-img user types, taken as qemu-img takes them (issue 19, item 10): snapshot -l --output json in
/// any option order, convert -S up to qemu-img's 16 MiB with its message beyond, -T src_cache for check and compare.
/// Each runs qemu-img on the same input and compares.
/// </summary>
public sealed class QemuImgArgumentTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("-l", "--output", "json")]
    [InlineData("--output", "json", "-l")]
    [InlineData("--output=json", "-l")]
    [InlineData("-l", "--output=json")]
    [InlineData("--output=json")]
    public async Task Snapshot_list_in_json_parses_in_any_order(params string[] options)
    {
        string image = _dir.File("snap.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", image, "16M")).ExitCode);
        Assert.Equal(0, (await QemuImg("snapshot", "-c", "first", image)).ExitCode);
        Assert.Equal(0, (await QemuImg("snapshot", "-c", "second", image)).ExitCode);

        RunResult ours = await Imgtool(["snapshot", .. options, image]);
        Assert.True(ours.ExitCode == 0, ours.ToString());

        // qemu-img snapshot has no JSON; its JSON for the same list is info's "snapshots" array.
        RunResult info = await QemuImg("info", "--output=json", image);
        using JsonDocument theirs = JsonDocument.Parse(info.Out);
        using JsonDocument list = JsonDocument.Parse(ours.Out);
        Assert.True(JsonElement.DeepEquals(theirs.RootElement.GetProperty("snapshots"), list.RootElement), $"qemu-img info:\n{info.Out}\nimgtool:\n{ours.Out}");
    }

    [Fact]
    public async Task Snapshot_output_json_is_only_for_the_list()
    {
        string image = _dir.File("snap.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", image, "16M")).ExitCode);
        RunResult ours = await Imgtool("snapshot", "--output", "json", "-c", "s1", image);
        Assert.Equal(1, ours.ExitCode);
        Assert.Equal("imgtool: --output applies only to -l\n", ours.Err);
        Assert.Equal(0, (await QemuImg("snapshot", "-l", image)).ExitCode);
        Assert.DoesNotContain("s1", (await QemuImg("snapshot", "-l", image)).Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("512")]
    [InlineData("1.5k")]
    [InlineData("2M")]
    [InlineData("4M")]
    [InlineData("16M")]
    [InlineData("16777216")]
    [InlineData("16777728")]
    [InlineData("17M")]
    [InlineData("1000")]
    [InlineData("1T")]
    [InlineData("-1")]
    [InlineData("abc")]
    public async Task Convert_takes_sparse_sizes_as_qemu_img_does(string sparse)
    {
        string source = _dir.File("source.raw");
        SparseFile(source, 40 << 20, (0, 100_000), (5 << 20, 100_000), (30 << 20, 100_000));
        string theirs = _dir.File("theirs.qcow2");
        string ours = _dir.File("ours.qcow2");

        RunResult q = await QemuImg("convert", "-O", "qcow2", "-S", sparse, source, theirs);
        RunResult o = await Imgtool("convert", "-O", "qcow2", "-S", sparse, source, ours);
        Assert.True(q.ExitCode == o.ExitCode, $"qemu-img:\n{q}\nimgtool:\n{o}");
        if (q.ExitCode != 0)
        {
            // qemu-img's message, its two lines (for a size it cannot parse) joined into one.
            string message = string.Join(' ', q.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l["qemu-img: ".Length..]));
            Assert.Equal($"imgtool: {message}\n", o.Err);
            Assert.False(File.Exists(ours));
            return;
        }

        Assert.Equal(0, (await QemuImg("compare", source, ours)).ExitCode);
        Assert.Equal(new FileInfo(theirs).Length, new FileInfo(ours).Length);
    }

    [Theory]
    [InlineData("check", "none")]
    [InlineData("check", "writeback")]
    [InlineData("check", "writethrough")]
    [InlineData("check", "directsync")]
    [InlineData("check", "unsafe")]
    [InlineData("check", "bogus")]
    [InlineData("compare", "none")]
    [InlineData("compare", "unsafe")]
    [InlineData("compare", "writethrough")]
    [InlineData("compare", "bogus")]
    public async Task Check_and_compare_take_a_source_cache_mode(string command, string cache)
    {
        string image = _dir.File("image.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", image, "16M")).ExitCode);
        Assert.Equal(0, (await Qemu("qemu-io", "-c", "write -P 7 0 1M", image)).ExitCode);
        string[] files = command == "compare" ? [image, image] : [image];

        RunResult q = await QemuImg([command, "-T", cache, .. files]);
        RunResult o = await Imgtool([command, "-T", cache, .. files]);
        Assert.True(q.ExitCode == o.ExitCode, $"qemu-img:\n{q}\nimgtool:\n{o}");
        Assert.Equal(q.Out, o.Out);
        Assert.Equal(q.Err.Replace("qemu-img: ", "imgtool: ", StringComparison.Ordinal), o.Err);
    }
}

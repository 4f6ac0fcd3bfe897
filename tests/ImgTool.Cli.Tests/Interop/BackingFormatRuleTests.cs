using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// The backing-format rules of qemu-img 7.2 for create, convert -B and rebase (issue 19, item 7): a backing file
/// needs its format, a backing format needs a backing file. Each command runs through qemu-img and imgtool on the
/// same files; the exit status and the message must agree, and a refused command leaves no file behind.
/// </summary>
public sealed class BackingFormatRuleTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("create", "-f", "qcow2", "-F", "raw", "{out}", "1M")]
    [InlineData("create", "-f", "qcow2", "-b", "{raw}", "{out}")]
    [InlineData("create", "-f", "qcow2", "-b", "{qcow2}", "{out}")]
    [InlineData("create", "-f", "qcow2", "-b", "{qcow2}", "{out}", "1M")]
    [InlineData("create", "-f", "qcow2", "-u", "-b", "{qcow2}", "{out}", "1M")]
    [InlineData("create", "-f", "qcow2", "-o", "backing_file={qcow2}", "{out}")]
    [InlineData("create", "-f", "qcow2", "-o", "backing_fmt=qcow2", "{out}", "1M")]
    [InlineData("create", "-f", "qed", "-b", "{qcow2}", "{out}")]
    [InlineData("create", "-f", "vmdk", "-b", "{qcow2}", "{out}")]
    [InlineData("create", "-f", "raw", "-F", "qcow2", "{out}", "1M")]
    [InlineData("create", "-f", "raw", "-b", "{qcow2}", "{out}", "1M")]
    [InlineData("create", "-f", "qcow2", "-b", "{qcow2}", "-F", "qcow2", "{out}")]
    [InlineData("create", "-f", "qcow2", "-u", "-b", "{qcow2}", "-F", "qcow2", "{out}", "1M")]
    [InlineData("create", "-f", "qcow2", "-b", "{raw}", "-o", "backing_fmt=raw", "{out}")]
    [InlineData("convert", "-O", "qcow2", "-B", "{qcow2}", "{raw}", "{out}")]
    [InlineData("convert", "-O", "qcow2", "-o", "backing_file={qcow2}", "{raw}", "{out}")]
    [InlineData("convert", "-O", "qcow2", "-F", "qcow2", "{raw}", "{out}")]
    [InlineData("convert", "-O", "qcow2", "-o", "backing_fmt=qcow2", "{raw}", "{out}")]
    [InlineData("convert", "-O", "qcow2", "-B", "{qcow2}", "-F", "qcow2", "{raw}", "{out}")]
    [InlineData("convert", "-O", "qcow2", "-o", "backing_file={qcow2},backing_fmt=qcow2", "{raw}", "{out}")]
    [InlineData("rebase", "-b", "{raw}", "{overlay}")]
    [InlineData("rebase", "-u", "-b", "{raw}", "{overlay}")]
    [InlineData("rebase", "-F", "raw", "{overlay}")]
    [InlineData("rebase", "-u", "-F", "raw", "{overlay}")]
    [InlineData("rebase", "-b", "{raw}", "-F", "raw", "{overlay}")]
    public async Task Backing_format_rules_are_qemu_imgs(params string[] template)
    {
        string output = _dir.File("out.img");
        RunResult q = await QemuImg(await ArgumentsAsync(template));
        string[] theirOverlay = ReadBackingLines();
        File.Delete(output);

        RunResult o = await Imgtool(await ArgumentsAsync(template));
        Assert.True(q.ExitCode == o.ExitCode, $"qemu-img:\n{q}\nimgtool:\n{o}");
        if (q.ExitCode == 0)
        {
            Assert.Equal(q.Out, o.Out);
            Assert.Equal(theirOverlay, ReadBackingLines());
            return;
        }

        Assert.StartsWith(Message(q.Err, "qemu-img"), Message(o.Err, "imgtool"), StringComparison.Ordinal);
        Assert.Single(o.Err.TrimEnd('\n').Split('\n'));
        Assert.False(File.Exists(output), "a refused command must leave no file behind");
    }

    [Fact]
    public async Task The_probe_is_made_explicit_with_probe_backing_format()
    {
        string[] template = ["create", "-f", "qcow2", "-b", "{qcow2}", "--probe-backing-format", "{out}"];
        RunResult o = await Imgtool(await ArgumentsAsync(template));
        Assert.True(o.ExitCode == 0, o.ToString());
        RunResult info = await QemuImg("info", _dir.File("out.img"));
        Assert.Contains("backing file format: qcow2", info.Out, StringComparison.Ordinal);

        // It probes by opening the backing file, which -u forbids.
        File.Delete(_dir.File("out.img"));
        RunResult withUnsafe = await Imgtool(await ArgumentsAsync(["create", "-f", "qcow2", "-u", "-b", "{qcow2}", "--probe-backing-format", "{out}", "1M"]));
        Assert.Equal(1, withUnsafe.ExitCode);
        Assert.Contains("-u forbids", withUnsafe.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.File("out.img")));
    }

    [Fact]
    public async Task The_refusal_names_the_detected_format_and_the_way_out()
    {
        RunResult o = await Imgtool(await ArgumentsAsync(["create", "-f", "qcow2", "-b", "{raw}", "{out}"]));
        Assert.Equal(1, o.ExitCode);
        Assert.Equal($"imgtool: {_dir.File("out.img")}: Backing file specified without backing format. Detected format of raw. Give -F raw, or --probe-backing-format to use the detected format.\n", o.Err);
    }

    [Fact]
    public async Task A_backing_format_without_a_backing_file_is_refused_for_every_format_that_has_backing_files()
    {
        // qemu-img's qed driver ignores a lone -F; refusing it is stricter, so the script still runs on qemu-img.
        foreach (string format in new[] { "qcow2", "qed", "vmdk", "vpc", "vhdx", "vdi" })
        {
            RunResult o = await Imgtool("create", "-f", format, "-F", "qcow2", _dir.File("lone.img"), "1M");
            Assert.True(o.ExitCode == 1, $"{format}: {o}");
            Assert.EndsWith("Backing format cannot be used without backing file\n", o.Err, StringComparison.Ordinal);
            Assert.False(File.Exists(_dir.File("lone.img")));
        }
    }

    /// <summary>The arguments with fresh input files: a raw and a qcow2 backing candidate, and a qcow2 overlay over
    /// the qcow2 (recreated for each run, as rebase changes it).</summary>
    private async Task<string[]> ArgumentsAsync(string[] template)
    {
        string raw = _dir.File("base.raw");
        string qcow2 = _dir.File("base.qcow2");
        string overlay = _dir.File("overlay.qcow2");
        if (!File.Exists(raw))
        {
            Assert.Equal(0, (await QemuImg("create", "-q", "-f", "raw", raw, "1M")).ExitCode);
            Assert.Equal(0, (await QemuImg("create", "-q", "-f", "qcow2", qcow2, "1M")).ExitCode);
        }

        File.Delete(overlay);
        Assert.Equal(0, (await QemuImg("create", "-q", "-f", "qcow2", "-b", qcow2, "-F", "qcow2", overlay)).ExitCode);
        return template.Select(a => a.Replace("{raw}", raw, StringComparison.Ordinal).Replace("{qcow2}", qcow2, StringComparison.Ordinal)
            .Replace("{overlay}", overlay, StringComparison.Ordinal).Replace("{out}", _dir.File("out.img"), StringComparison.Ordinal)).ToArray();
    }

    /// <summary>What qemu-img info says of the backing file of the output and the overlay, where they exist.</summary>
    private string[] ReadBackingLines() => new[] { _dir.File("out.img"), _dir.File("overlay.qcow2") }
        .Where(File.Exists)
        .SelectMany(f => QemuImg("info", f).GetAwaiter().GetResult().Out.Split('\n').Where(l => l.StartsWith("backing file", StringComparison.Ordinal)))
        .ToArray();

    /// <summary>
    /// The message without the tool's name, on one line: qemu-img's hint line ("Detected format of raw.") joined
    /// with ". ", its "Try 'qemu-img --help'" line and convert's "error while converting qcow2: " left out.
    /// </summary>
    private static string Message(string stderr, string tool) => string.Join(". ", stderr
        .Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Where(l => !l.StartsWith("Try '", StringComparison.Ordinal))
        .Select(l => l.Replace($"{tool}: ", string.Empty, StringComparison.Ordinal).Replace("error while converting qcow2: ", string.Empty, StringComparison.Ordinal)));
}

namespace ImgTool.Cli.Tests;

/// <summary>
/// Issue 19 item 9: messages carry their context. A missing backing file is called the backing file and shown as the
/// path that was tried (the stored name resolved against the image's folder, as qemu-img shows it); a missing argument
/// is named in qemu-img's words; `convert -c -O vmdk` says which subformat compresses.
/// </summary>
public sealed class ContextMessageTests : IDisposable
{
    private readonly TempDir _directory = new();

    public void Dispose() => _directory.Dispose();

    public static TheoryData<string[]> CommandsOpeningTheChain => new()
    {
        { ["info", "--backing-chain", "OVERLAY"] },
        { ["convert", "-O", "raw", "OVERLAY", "OUT"] },
        { ["map", "OVERLAY"] },
        { ["compare", "OVERLAY", "OVERLAY"] },
        { ["commit", "OVERLAY"] },
    };

    [Theory]
    [MemberData(nameof(CommandsOpeningTheChain))]
    public async Task A_missing_backing_file_is_named_as_the_backing_file_at_its_resolved_path(string[] command)
    {
        string overlay = await OverlayOfDeletedBaseAsync("qcow2");
        string[] args = command.Select(a => a == "OVERLAY" ? overlay : a == "OUT" ? _directory.File("out.raw") : a).ToArray();

        RunResult ours = await Tools.Imgtool(args);
        RunResult qemu = await Tools.QemuImg(args);

        string resolved = Path.Combine(_directory.Path, "sub", "..", "src.qcow2");
        Assert.NotEqual(0, ours.ExitCode);
        Assert.Equal($"imgtool: {overlay}: could not open backing file '{resolved}': No such file or directory\n", ours.Err);
        // qemu-img shows the same path: "Could not open 'DIR/sub/../src.qcow2': No such file or directory".
        Assert.NotEqual(0, qemu.ExitCode);
        Assert.Contains($"'{resolved}': No such file or directory", qemu.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_vmdk_parent_is_named_as_the_backing_file()
    {
        string child = await OverlayOfDeletedBaseAsync("vmdk");

        RunResult ours = await Tools.Imgtool("map", child);

        string resolved = Path.Combine(_directory.Path, "sub", "..", "src.vmdk");
        Assert.Equal($"imgtool: {child}: could not open backing file '{resolved}': No such file or directory\n", ours.Err);
    }

    /// <summary>qemu-img: "OV: Could not open 'sub/../src.qcow2': No such file or directory" then "Could not open backing image."</summary>
    [Fact]
    public async Task Create_over_a_missing_backing_file_says_it_is_the_backing_file()
    {
        Directory.CreateDirectory(_directory.File("sub"));
        string overlay = _directory.File("sub/ov.qcow2");

        RunResult ours = await Tools.Imgtool("create", "-f", "qcow2", "-b", "../src.qcow2", "-F", "qcow2", overlay);
        RunResult qemu = await Tools.QemuImg("create", "-f", "qcow2", "-b", "../src.qcow2", "-F", "qcow2", overlay);

        string resolved = Path.Combine(_directory.Path, "sub", "..", "src.qcow2");
        Assert.Equal(1, ours.ExitCode);
        Assert.Equal($"imgtool: {overlay}: could not open backing file '{resolved}': No such file or directory\n", ours.Err);
        Assert.StartsWith($"qemu-img: {overlay}: Could not open '{resolved}': No such file or directory\n", qemu.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(overlay));
    }

    /// <summary>The first line of qemu-img's error, word for word, for each kind of missing or surplus argument.</summary>
    [Theory]
    [InlineData("info")]
    [InlineData("info", "A", "B")]
    [InlineData("check")]
    [InlineData("map")]
    [InlineData("snapshot", "-l")]
    [InlineData("commit")]
    [InlineData("rebase")]
    [InlineData("bench")]
    [InlineData("compare")]
    [InlineData("compare", "A")]
    [InlineData("create")]
    [InlineData("create", "-f", "qcow2")]
    [InlineData("create", "-f", "qcow2", "NEW")]
    [InlineData("convert")]
    [InlineData("convert", "A")]
    [InlineData("amend")]
    [InlineData("amend", "-o", "compat=1.1")]
    [InlineData("resize")]
    [InlineData("resize", "A")]
    [InlineData("resize", "A", "+1M", "B")]
    [InlineData("measure", "-O", "qcow2", "A", "B")]
    [InlineData("info", "-f")]
    [InlineData("convert", "-O")]
    [InlineData("info", "--output")]
    [InlineData("create", "-f", "qcow2", "-o")]
    [InlineData("create", "-f", "qcow2", "NEW", "-o")]
    [InlineData("convert", "-O", "qcow2", "A", "NEW", "-o")]
    [InlineData("amend", "-o")]
    public async Task A_missing_argument_is_named_in_qemu_img_words(params string[] command)
    {
        await Tools.QemuImg("create", "-q", "-f", "qcow2", _directory.File("a.qcow2"), "1M");
        string[] args = command.Select(a => a switch
        {
            "A" => _directory.File("a.qcow2"),
            "B" => _directory.File("a.qcow2"),
            "NEW" => _directory.File("new.qcow2"),
            _ => a,
        }).ToArray();

        RunResult qemu = await Tools.QemuImg(args);
        RunResult ours = await Tools.Imgtool(args);

        Assert.NotEqual(0, qemu.ExitCode);
        Assert.NotEqual(0, ours.ExitCode);
        string qemuLine = qemu.Err.Split('\n')[0];
        Assert.StartsWith("qemu-img: ", qemuLine, StringComparison.Ordinal);
        Assert.Equal("imgtool: " + qemuLine["qemu-img: ".Length..], ours.Err.Split('\n')[0]);
        Assert.False(File.Exists(_directory.File("new.qcow2")));
    }

    /// <summary>qemu-img writes a monolithicSparse VMDK uncompressed without a word; imgtool refuses and says what compresses.</summary>
    [Theory]
    [InlineData(null, "monolithicSparse")]
    [InlineData("subformat=monolithicFlat", "monolithicFlat")]
    public async Task Convert_c_to_vmdk_says_that_streamOptimized_compresses(string? option, string subformat)
    {
        await Tools.QemuImg("create", "-q", "-f", "qcow2", _directory.File("a.qcow2"), "1M");
        string target = _directory.File("c.vmdk");
        string[] options = option is null ? [] : ["-o", option];

        RunResult ours = await Tools.Imgtool(["convert", "-c", "-O", "vmdk", .. options, _directory.File("a.qcow2"), target]);

        Assert.Equal(1, ours.ExitCode);
        Assert.Equal($"imgtool: {target}: compression (-c) is not supported by format 'vmdk' with these options: only -o subformat=streamOptimized compresses, not {subformat}\n", ours.Err);
        RunResult stream = await Tools.Imgtool("convert", "-c", "-O", "vmdk", "-o", "subformat=streamOptimized", _directory.File("a.qcow2"), target);
        Assert.True(stream.ExitCode == 0, stream.ToString());
    }

    /// <summary>DIR/src.FORMAT, then DIR/sub/ov.FORMAT over "../src.FORMAT", then the base deleted.</summary>
    private async Task<string> OverlayOfDeletedBaseAsync(string format)
    {
        Directory.CreateDirectory(_directory.File("sub"));
        string source = _directory.File($"src.{format}");
        string overlay = _directory.File($"sub/ov.{format}");
        RunResult created = await Tools.QemuImg("create", "-q", "-f", format, source, "1M");
        Assert.True(created.ExitCode == 0, created.ToString());
        created = await Tools.QemuImg("create", "-q", "-f", format, "-b", $"../src.{format}", "-F", format, overlay);
        Assert.True(created.ExitCode == 0, created.ToString());
        File.Delete(source);
        return overlay;
    }
}

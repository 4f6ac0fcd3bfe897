using ImgTool.TestSupport;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>`convert -B backing -F fmt`: the target gets a backing file and holds only what the source's own top
/// layer holds, laid out as qemu-img lays it out. And `convert -l`: from an internal snapshot.</summary>
public sealed class ConvertBackingAndSnapshotTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("qcow2", "cluster_size=65536", false)]
    [InlineData("qcow2", "cluster_size=65536", true)]
    [InlineData("qcow2", "cluster_size=4096,compat=0.10", false)]
    [InlineData("qcow2", "extended_l2=on", false)]
    public async Task The_target_holds_what_the_top_layer_holds_like_qemu_img(string format, string options, bool compress)
    {
        string source = await QemuMadeOverlayAsync();
        string[] compressArg = compress ? ["-c"] : [];
        string ours = _dir.File($"ours.{format}");
        string theirs = _dir.File($"theirs.{format}");
        string backingFormat = "qcow2";
        RunResult converted = await Imgtool(["convert", .. compressArg, "-O", format, "-o", options, "-B", "base.qcow2", "-F", backingFormat, source, ours]);
        Assert.True(converted.ExitCode == 0, converted.ToString());
        RunResult reference = await QemuIn(_dir.Path, "qemu-img", ["convert", .. compressArg, "-O", format, "-o", options, "-B", "base.qcow2", "-F", backingFormat, source, theirs]);
        Assert.True(reference.ExitCode == 0, reference.ToString());

        // Same content as the source, through the backing file; same layout as qemu-img's (depth and allocation).
        Assert.Equal(0, (await QemuImg("compare", source, ours)).ExitCode);
        Assert.Equal(
            (await QemuImg("map", "--output=json", theirs)).Out.Replace("theirs", "ours", StringComparison.Ordinal),
            (await QemuImg("map", "--output=json", ours)).Out);
        if (format == "qcow2")
        {
            RunResult check = await QemuImg("check", ours);
            Assert.True(check.ExitCode == 0, check.ToString());
        }

        string info = (await QemuImg("info", ours)).Out;
        Assert.Contains("backing file: base.qcow2", info, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-O qcow2 -B base.qcow2 top.qcow2 new.qcow2")]
    [InlineData("-O raw -B base.qcow2 -F qcow2 top.qcow2 new.raw")]
    [InlineData("-O qcow2 -B base.qcow2 -F qcow2 top.qcow2 base.qcow2 new.qcow2")]
    public async Task Misuse_is_refused_like_qemu_img_and_leaves_no_target(string arguments)
    {
        await QemuMadeOverlayAsync();
        string[] args = ["convert", .. arguments.Split(' ')];
        RunResult theirs = await QemuIn(_dir.Path, "qemu-img", args);
        string[] ourArgs = [.. args.Select(a => a.EndsWith(".qcow2", StringComparison.Ordinal) || a.EndsWith(".raw", StringComparison.Ordinal) ? _dir.File(a) : a)];
        RunResult ours = await Imgtool(ourArgs);
        Assert.Equal(1, theirs.ExitCode);
        Assert.Equal(1, ours.ExitCode);
        Assert.Equal(theirs.Err.Replace("qemu-img:", "imgtool:", StringComparison.Ordinal), ours.Err);
        Assert.Empty(Directory.GetFiles(_dir.Path, "new.*"));
    }

    [Theory]
    [InlineData("-F qcow2", "Backing format cannot be used without backing file")]
    [InlineData("-n -B base.qcow2 -F qcow2", "-B cannot be used with -n")]
    [InlineData("-l snapshot.tag=x", "Invalid parameter 'snapshot.tag' in -l")]
    public async Task Other_misuse_gets_one_clear_line(string arguments, string message)
    {
        string source = await QemuMadeOverlayAsync();
        string target = _dir.File("new.qcow2");
        if (arguments.StartsWith("-n", StringComparison.Ordinal))
        {
            Assert.Equal(0, (await QemuImg("create", "-q", "-f", "qcow2", target, "8M")).ExitCode);
        }

        RunResult ours = await Imgtool(["convert", "-O", "qcow2", .. arguments.Replace("base.qcow2", _dir.File("base.qcow2"), StringComparison.Ordinal).Split(' '), source, target]);
        Assert.Equal(1, ours.ExitCode);
        Assert.Contains(message, ours.Err, StringComparison.Ordinal);
        Assert.Single(ours.Err.Trim().Split('\n'));
        Assert.Equal(arguments.StartsWith("-n", StringComparison.Ordinal), File.Exists(target));
    }

    [Fact]
    public async Task An_option_convert_does_not_have_is_not_taken_for_a_file_name()
    {
        string source = await QemuMadeOverlayAsync();
        RunResult ours = await Imgtool("convert", "-O", "raw", "--salvage", source, _dir.File("new.raw"));
        Assert.Equal(1, ours.ExitCode);
        Assert.Equal("imgtool: unknown option '--salvage'\n", ours.Err);
        Assert.False(File.Exists(_dir.File("new.raw")));
    }

    [Theory]
    [InlineData("first")]
    [InlineData("1")]
    [InlineData("snapshot.name=first")]
    [InlineData("snapshot.id=1,snapshot.name=first")]
    [InlineData("nosuch")]
    [InlineData("snapshot.id=1,snapshot.name=second")]
    public async Task Convert_l_reads_the_snapshot_like_qemu_img(string selector)
    {
        // A snapshot of 8 MiB, then writes over it and a resize to 12 MiB (the copy keeps the current size).
        string image = _dir.File("snap.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-q", "-f", "qcow2", image, "8M")).ExitCode);
        Assert.Equal(0, (await Qemu("qemu-io", "-c", "write -P 1 0 2M", "-c", "write -c -P 5 4M 64k", image)).ExitCode);
        Assert.Equal(0, (await QemuImg("snapshot", "-c", "first", image)).ExitCode);
        Assert.Equal(0, (await Qemu("qemu-io", "-c", "write -P 2 1M 2M", "-c", "write -z 4M 64k", image)).ExitCode);
        Assert.Equal(0, (await QemuImg("resize", "-q", image, "12M")).ExitCode);
        Assert.Equal(0, (await Qemu("qemu-io", "-c", "write -P 3 10M 64k", image)).ExitCode);

        string theirs = _dir.File("theirs.raw");
        string ours = _dir.File("ours.raw");
        RunResult reference = await QemuImg("convert", "-O", "raw", "-l", selector, image, theirs);
        RunResult converted = await Imgtool("convert", "-O", "raw", "-l", selector, image, ours);
        Assert.Equal(reference.ExitCode, converted.ExitCode);
        if (reference.ExitCode != 0)
        {
            Assert.Equal(reference.Err.Replace("qemu-img:", "imgtool:", StringComparison.Ordinal), converted.Err);
            Assert.False(File.Exists(ours));
            return;
        }

        Assert.Equal(await File.ReadAllBytesAsync(theirs), await File.ReadAllBytesAsync(ours));
        Assert.Equal(0, (await QemuImg("check", image)).ExitCode); // the source is left as it was
    }

    [Fact]
    public async Task Convert_l_of_a_format_without_snapshots_fails_and_leaves_no_target()
    {
        string raw = _dir.File("plain.raw");
        Assert.Equal(0, (await QemuImg("create", "-q", "-f", "raw", raw, "1M")).ExitCode);
        RunResult ours = await Imgtool("convert", "-f", "raw", "-O", "qcow2", "-l", "s1", raw, _dir.File("new.qcow2"));
        Assert.Equal(1, ours.ExitCode);
        Assert.Contains("Failed to load snapshot", ours.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.File("new.qcow2")));
        Assert.Equal(1, (await QemuImg("convert", "-f", "raw", "-O", "qcow2", "-l", "s1", raw, _dir.File("theirs.qcow2"))).ExitCode);
    }

    /// <summary>base.qcow2 (4 MiB of pattern 1 in 8 MiB) under top.qcow2, whose top layer holds data, a partial
    /// cluster, write-zeroes and data that is all zeros.</summary>
    private async Task<string> QemuMadeOverlayAsync()
    {
        string baseImage = _dir.File("base.qcow2");
        string top = _dir.File("top.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-q", "-f", "qcow2", baseImage, "8M")).ExitCode);
        Assert.Equal(0, (await Qemu("qemu-io", "-c", "write -P 1 0 4M", baseImage)).ExitCode);
        Assert.Equal(0, (await QemuIn(_dir.Path, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)).ExitCode);
        RunResult written = await Qemu("qemu-io", "-c", "write -P 2 1M 64k", "-c", "write -P 3 1600k 4k", "-c", "write -z 2M 64k", "-c", "write -P 0 3M 64k", "-c", "write -P 4 6M 128k", top);
        Assert.True(written.ExitCode == 0, written.ToString());
        return top;
    }
}

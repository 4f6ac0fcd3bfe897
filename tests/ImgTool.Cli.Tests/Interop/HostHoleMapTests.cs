using System.Text.Json;
using ImgTool.TestSupport;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// Where qemu-img looks through a format to its file (fixed VHD, VMDK flat extents, qcow2 with preallocated
/// metadata), data stored in a hole of the file is "zero": true, "data": true; the human map leaves it out.
/// Checked against qemu-img on images qemu-img made, in both output formats, and through convert.
/// </summary>
public sealed class HostHoleMapTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Name, create options, the format to name with -f (a fixed VHD probes as raw in qemu-img), qemu-io format.</summary>
    public static TheoryData<string, string, string?> Images => new()
    {
        { "meta.qcow2", "qcow2:preallocation=metadata", null },
        { "meta4k.qcow2", "qcow2:preallocation=metadata,cluster_size=16384,extended_l2=on", null },
        { "metadata-file.qcow2", "qcow2:preallocation=metadata,data_file=metadata-file.data", null },
        { "falloc.qcow2", "qcow2:preallocation=falloc", null },
        { "plain.qcow2", "qcow2:cluster_size=65536", null },
        { "fixed.vhd", "vpc:subformat=fixed", "vpc" },
        { "flat.vmdk", "vmdk:subformat=monolithicFlat", null },
        { "twogb.vmdk", "vmdk:subformat=twoGbMaxExtentFlat", null },
    };

    [Theory]
    [MemberData(nameof(Images))]
    public async Task Map_is_the_same_as_qemu_img_map(string name, string formatAndOptions, string? forcedFormat)
    {
        string image = await QemuMadeImageAsync(name, formatAndOptions);
        foreach (string output in new[] { "json", "human" })
        {
            string[] args = forcedFormat is null ? ["map", "--output", output, image] : ["map", "-f", forcedFormat, "--output", output, image];
            RunResult theirs = await QemuIn(_dir.Path, "qemu-img", args);
            RunResult ours = await Imgtool(args);
            Assert.True(theirs.ExitCode == 0, theirs.ToString());
            Assert.True(ours.ExitCode == 0, ours.ToString());
            // qemu-img names a data file as the image stores it (relative), we by its full path.
            Assert.Equal(theirs.Out.Replace(_dir.Path + "/", string.Empty, StringComparison.Ordinal), ours.Out.Replace(_dir.Path + "/", string.Empty, StringComparison.Ordinal));
        }
    }

    [Theory]
    [MemberData(nameof(Images))]
    public async Task Convert_skips_data_that_lies_in_holes(string name, string formatAndOptions, string? forcedFormat)
    {
        string image = await QemuMadeImageAsync(name, formatAndOptions);
        string ours = _dir.File("ours.raw");
        string theirs = _dir.File("theirs.raw");
        string[] format = forcedFormat is null ? [] : ["-f", forcedFormat];
        RunResult converted = await Imgtool(["convert", .. format, "--output=json", "-O", "raw", image, ours]);
        Assert.True(converted.ExitCode == 0, converted.ToString());
        Assert.Equal(0, (await QemuIn(_dir.Path, "qemu-img", ["convert", .. format, "-O", "raw", image, theirs])).ExitCode);
        Assert.Equal(await File.ReadAllBytesAsync(theirs), await File.ReadAllBytesAsync(ours));

        // Only what qemu-img maps as data that is not zero is read: data in holes of the file is skipped unread.
        using JsonDocument map = JsonDocument.Parse((await QemuIn(_dir.Path, "qemu-img", ["map", .. format, "--output=json", image])).Out);
        long stored = map.RootElement.EnumerateArray()
            .Where(e => e.GetProperty("data").GetBoolean() && !e.GetProperty("zero").GetBoolean())
            .Sum(e => e.GetProperty("length").GetInt64());
        using JsonDocument report = JsonDocument.Parse(converted.Out);
        Assert.Equal(stored, report.RootElement.GetProperty("bytes-read").GetInt64());

        // The image holds 68 KiB of data; everything else is a hole in its file and must stay one.
        Assert.True(Allocated(ours) <= Allocated(theirs), $"ours allocates {Allocated(ours)} bytes, qemu-img's copy {Allocated(theirs)}");
        Assert.True(Allocated(ours) <= 256 * 1024, $"ours allocates {Allocated(ours)} bytes for 68 KiB of data");
    }

    [Fact]
    public async Task Human_map_of_compressed_clusters_fails_like_qemu_img()
    {
        string source = await QemuMadeImageAsync("source.qcow2", "qcow2:cluster_size=65536");
        string image = _dir.File("compressed.qcow2");
        Assert.Equal(0, (await QemuImg("convert", "-c", "-O", "qcow2", source, image)).ExitCode);
        RunResult theirs = await QemuImg("map", image);
        RunResult ours = await Imgtool("map", image);
        Assert.Equal(1, theirs.ExitCode);
        Assert.Equal(1, ours.ExitCode);
        Assert.Equal(theirs.Out, ours.Out);
        Assert.Equal(theirs.Err.Replace("qemu-img:", "imgtool:", StringComparison.Ordinal), ours.Err);
    }

    /// <summary>A 4 MiB image made by qemu-img with 64 KiB at 1 MiB and 4 KiB at 3 MiB written by qemu-io.</summary>
    private async Task<string> QemuMadeImageAsync(string name, string formatAndOptions)
    {
        string image = _dir.File(name);
        string[] parts = formatAndOptions.Split(':');
        RunResult created = await QemuIn(_dir.Path, "qemu-img", "create", "-q", "-f", parts[0], "-o", parts[1], image, "4M");
        Assert.True(created.ExitCode == 0, created.ToString());
        RunResult written = await QemuIn(_dir.Path, "qemu-io", "-f", parts[0], "-c", "write -P 7 1M 64k", "-c", "write -P 9 3M 4k", image);
        Assert.True(written.ExitCode == 0, written.ToString());
        return image;
    }
}

using System.Diagnostics;
using System.Text.Json;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// `amend -o format=qed` / `-o format=qcow2`: in-place conversion between qcow2 and QED, checked with the real
/// qemu-img (compare against the untouched original, check clean) after each step, and killed at every write.
/// </summary>
/// <remarks>
/// qemu-img 7.2's QED check miscounts files of more than cluster_size - 1 clusters (see QedInteropTests), so the
/// images with 4 KiB clusters stay below 16 MiB of file.
/// </remarks>
public sealed class AmendFormatConversionTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, string, string> Layouts => new()
    {
        // cluster size, virtual size, qcow2 compat of the source
        { "64k", "64M", "1.1" },
        { "4k", "12M", "1.1" },
        { "2M", "256M", "1.1" },
        { "64k", "64M", "0.10" },
        { "16k", "40M", "1.1" },
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Round_trip_qcow2_qed_qcow2_keeps_contents_and_checks_clean(string clusterSize, string size, string compat)
    {
        string image = _dir.File("disk.img");
        await Ok(QemuImg("create", "-f", "qcow2", "-o", $"cluster_size={clusterSize},compat={compat}", image, size));
        await WritePattern(image, "qcow2", zeroes: compat != "0.10");
        string original = Snapshot(image);

        RunResult toQed = await Ok(Imgtool("amend", "--output=json", "-o", "format=qed", image));
        using (JsonDocument result = JsonDocument.Parse(toQed.Out))
        {
            // Every hole of the qcow2 metadata was filled: QED would count it as a leak.
            Assert.Equal(0, result.RootElement.GetProperty("conversion").GetProperty("leaked-clusters").GetInt64());
        }

        await AssertFormat(image, "qed");
        await AssertSame(original, image);
        await AssertCheckClean(image);

        await Ok(Imgtool("amend", "-f", "qed", "-o", "format=qcow2", image));
        await AssertFormat(image, "qcow2");
        await AssertSame(original, image);
        await AssertCheckClean(image);
    }

    [Theory]
    [InlineData("64k", "1.1")]
    [InlineData("64k", "0.10")]
    [InlineData("4k", "1.1")]
    [InlineData("1M", "1.1")]
    public async Task Qemu_made_qed_converts_to_qcow2_and_back(string clusterSize, string compat)
    {
        string image = _dir.File("disk.qed");
        await Ok(QemuImg("create", "-f", "qed", "-o", $"cluster_size={clusterSize}", image, "10M"));
        await WritePattern(image, "qed", zeroes: true);
        string original = Snapshot(image);

        await Ok(Imgtool("amend", "-o", $"format=qcow2,compat={compat}", image));
        using (JsonDocument info = JsonDocument.Parse((await Ok(QemuImg("info", "--output=json", image))).Out))
        {
            Assert.Equal("qcow2", info.RootElement.GetProperty("format").GetString());
            Assert.Equal(compat, info.RootElement.GetProperty("format-specific").GetProperty("data").GetProperty("compat").GetString());
        }

        await AssertSame(original, image);
        await AssertCheckClean(image);

        await Ok(Imgtool("amend", "-o", "format=qed", image));
        await AssertFormat(image, "qed");
        await AssertSame(original, image);
        await AssertCheckClean(image);
    }

    [Theory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    public async Task A_backing_chain_reads_the_same_after_each_step(string backingFormat)
    {
        string basePath = _dir.File("base." + backingFormat);
        await Ok(QemuImg("create", "-f", backingFormat, basePath, "32M"));
        await Ok(Qemu("qemu-io", "-f", backingFormat, "-c", "write -P 0x5a 0 8M", "-c", "write -P 0x6b 20M 4M", basePath));
        string image = _dir.File("overlay.qcow2");
        await Ok(QemuImg("create", "-f", "qcow2", "-b", "base." + backingFormat, "-F", backingFormat, image));
        // Data over the backing file, a zero cluster hiding backing data, and holes that show it.
        await Ok(Qemu("qemu-io", "-c", "write -P 0x11 1M 3M", "-c", "write -z 21M 1M", "-c", "write -P 0x22 30M 64k", image));
        string original = Snapshot(image);

        await Ok(Imgtool("amend", "-o", "format=qed", image));
        await AssertFormat(image, "qed");
        using (JsonDocument info = JsonDocument.Parse((await Ok(QemuImg("info", "--output=json", image))).Out))
        {
            Assert.Equal("base." + backingFormat, info.RootElement.GetProperty("backing-filename").GetString());
        }

        await AssertSame(original, image);
        await AssertCheckClean(image);

        await Ok(Imgtool("amend", "-o", "format=qcow2", image));
        await AssertFormat(image, "qcow2");
        await AssertSame(original, image);
        await AssertCheckClean(image);
    }

    [Fact]
    public async Task Holes_left_by_zero_clusters_with_preallocated_space_are_filled()
    {
        // preallocation=metadata gives every cluster a host cluster; write -z then keeps them as zero-with-offset,
        // which become holes in QED that the compaction fills (or check would count them as leaks).
        string image = _dir.File("prealloc.qcow2");
        await Ok(QemuImg("create", "-f", "qcow2", "-o", "preallocation=metadata", image, "8M"));
        await Ok(Qemu("qemu-io", "-c", "write -P 0x31 0 2M", "-c", "write -z 2M 2M", "-c", "write -P 0x32 6M 1M", image));
        string original = Snapshot(image);
        await Ok(Imgtool("amend", "-o", "format=qed", image));
        await AssertSame(original, image);
        await AssertCheckClean(image);
        await Ok(Imgtool("amend", "-o", "format=qcow2", image));
        await AssertSame(original, image);
        await AssertCheckClean(image);
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { "compressed", "compressed" },
        { "snapshot", "snapshot" },
        { "encrypted", "encrypt" },
        { "data_file", "external data file" },
        { "extended_l2", "extended L2" },
        { "bitmap", "bitmaps" },
        { "cluster_512", "cluster size 512" },
        { "cluster_2k", "cluster size 2048" },
        { "backing_format", "backing format 'qcow2'" },
        { "qed_cluster_4M", "cluster size 4194304" },
        { "v2_zero_over_backing", "compat=0.10" },
        { "unsupported_option", "'lazy_refcounts' is not supported yet" },
        { "unsupported_option_with_format", "'cluster_size' is not supported yet" },
        { "other_format", "only qcow2 <-> qed" },
        { "no_options", "needs options" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task What_cannot_be_converted_in_place_is_refused_and_left_untouched(string kind, string expected)
    {
        string image = _dir.File("refused.img");
        string[] amend = ["amend", "--object", "secret,id=sec0,data=password", "-o", "format=qed", image];
        switch (kind)
        {
            case "compressed":
                // A pattern compresses (random data would be stored uncompressed).
                string raw = _dir.File("data.raw");
                await Ok(QemuImg("create", "-f", "raw", raw, "4M"));
                await Ok(Qemu("qemu-io", "-f", "raw", "-c", "write -P 0x55 0 1M", raw));
                await Ok(QemuImg("convert", "-c", "-O", "qcow2", raw, image));
                break;
            case "snapshot":
                await Ok(QemuImg("create", "-f", "qcow2", image, "8M"));
                await Ok(QemuImg("snapshot", "-c", "snap1", image));
                break;
            case "encrypted":
                await Ok(QemuImg("create", "-f", "qcow2", "--object", "secret,id=sec0,data=password", "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", image, "8M"));
                break;
            case "data_file":
                await Ok(QemuImg("create", "-f", "qcow2", "-o", "data_file=refused.data", image, "8M"));
                break;
            case "extended_l2":
                await Ok(QemuImg("create", "-f", "qcow2", "-o", "extended_l2=on", image, "8M"));
                break;
            case "bitmap":
                await Ok(QemuImg("create", "-f", "qcow2", image, "8M"));
                await Ok(QemuImg("bitmap", "--add", image, "b0"));
                break;
            case "cluster_512":
                await Ok(QemuImg("create", "-f", "qcow2", "-o", "cluster_size=512", image, "8M"));
                break;
            case "cluster_2k":
                await Ok(QemuImg("create", "-f", "qcow2", "-o", "cluster_size=2k", image, "8M"));
                break;
            case "backing_format":
                // The header says qcow2, the file is raw: QED could only probe it, and would find raw.
                SparseFile(_dir.File("base.raw"), 8 * MiB, (0, 4096));
                await Ok(QemuImg("create", "-f", "qcow2", "-u", "-b", "base.raw", "-F", "qcow2", image, "8M"));
                break;
            case "qed_cluster_4M":
                await Ok(QemuImg("create", "-f", "qed", "-o", "cluster_size=4M,table_size=2", image, "64M"));
                amend = ["amend", "-o", "format=qcow2", image];
                break;
            case "v2_zero_over_backing":
                SparseFile(_dir.File("base.raw"), 8 * MiB, (0, MiB));
                await Ok(QemuImg("create", "-f", "qed", "-b", "base.raw", "-F", "raw", image));
                await Ok(Qemu("qemu-io", "-c", "write -z 0 64k", image));
                amend = ["amend", "-o", "format=qcow2,compat=0.10", image];
                break;
            case "unsupported_option":
                await Ok(QemuImg("create", "-f", "qcow2", image, "8M"));
                amend = ["amend", "-o", "lazy_refcounts=on", image];
                break;
            case "unsupported_option_with_format":
                await Ok(QemuImg("create", "-f", "qcow2", image, "8M"));
                amend = ["amend", "-o", "format=qed,cluster_size=4k", image];
                break;
            case "no_options":
                await Ok(QemuImg("create", "-f", "qcow2", image, "8M"));
                amend = ["amend", image];
                break;
            case "other_format":
                await Ok(QemuImg("create", "-f", "qcow2", image, "8M"));
                amend = ["amend", "-o", "format=vmdk", image];
                break;
        }

        byte[] before = await File.ReadAllBytesAsync(image);
        RunResult result = await Imgtool(amend);
        Assert.True(result.ExitCode != 0, result.ToString());
        Assert.Contains(expected, result.Err, StringComparison.OrdinalIgnoreCase);
        Assert.Single(result.Err.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("imgtool: ", result.Err, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(image));
    }

    [Fact]
    public async Task Amending_to_the_same_format_changes_nothing()
    {
        string image = _dir.File("same.qcow2");
        await Ok(QemuImg("create", "-f", "qcow2", image, "8M"));
        byte[] before = await File.ReadAllBytesAsync(image);
        await Ok(Imgtool("amend", "-q", "-o", "format=qcow2", image));
        Assert.Equal(before, await File.ReadAllBytesAsync(image));
    }

    /// <summary>
    /// The conversion runs in a separate imgtool process that dies (Environment.FailFast, as a kill -9) right after
    /// its Nth write, truncation or flush, for every N until it completes: each time the file must open as qcow2 or
    /// QED with the original contents.
    /// </summary>
    [Theory]
    [InlineData("qcow2", "qed", "64k")]
    [InlineData("qed", "qcow2", "64k")]
    [InlineData("qcow2", "qed", "4k")]
    public async Task A_kill_after_any_write_leaves_an_image_with_all_its_data(string from, string to, string clusterSize)
    {
        string pristine = _dir.File("pristine.img");
        // With 64 KiB clusters, preallocation leaves holes for the QED compaction to fill (zero-with-offset clusters), so every kind of
        // write (tables, header switch, cluster moves, pointer updates, truncation) is among the crash points.
        string[] prealloc = from == "qcow2" && clusterSize == "64k" ? ["-o", $"cluster_size={clusterSize},preallocation=metadata"] : ["-o", $"cluster_size={clusterSize}"];
        await Ok(QemuImg(["create", "-f", from, .. prealloc, pristine, "12M"]));
        await WritePattern(pristine, from, zeroes: true);
        string original = _dir.File("original.img");
        File.Copy(pristine, original);

        string image = _dir.File("crash.img");
        bool completed = false;
        int crashes = 0;
        for (int n = 1; n < 500 && !completed; n++)
        {
            File.Copy(pristine, image, overwrite: true);
            RunResult run = await ChildImgtool(n, "amend", "-o", $"format={to}", image);
            completed = run.ExitCode == 0;
            Assert.True(completed || run.Err.Contains("IMGTOOL_AMEND_CRASH_AFTER", StringComparison.Ordinal), $"after write {n}: {run}");
            crashes += completed ? 0 : 1;
            RunResult info = await Ok(QemuImg("info", "--output=json", image));
            string format = JsonDocument.Parse(info.Out).RootElement.GetProperty("format").GetString()!;
            Assert.True(format is "qcow2" or "qed", $"after write {n} the image probes as {format}");
            RunResult compare = await QemuImg("compare", "-f", from, "-F", format, original, image);
            Assert.True(compare.ExitCode == 0, $"after write {n} ({format}): {compare}");
            RunResult check = await QemuImg("check", "-f", format, image);
            Assert.True(check.ExitCode is 0 or 3, $"after write {n} ({format}) check finds corruption: {check}");
            if (completed)
            {
                Assert.Equal(to, format);
                Assert.Equal(0, check.ExitCode);
            }
        }

        Assert.True(completed, "the conversion never completed");
        Assert.True(crashes >= 5, $"only {crashes} crash points");
    }

    private static async Task WritePattern(string image, string format, bool zeroes)
    {
        // Data in several L2 ranges, holes between, and (v3 / QED) zero clusters, one over earlier data.
        List<string> commands = ["write -P 0x41 0 1M", "write -P 0x42 3M 64k", "write -P 0x43 5M 2M", "write -P 0x44 9M 4k"];
        if (zeroes)
        {
            commands.AddRange(["write -z 1M 1M", "write -z 5M 256k"]);
        }

        await Ok(Qemu("qemu-io", ["-f", format, .. commands.SelectMany(c => new[] { "-c", c }), image]));
    }

    private string Snapshot(string image)
    {
        string copy = _dir.File(Path.GetFileNameWithoutExtension(image) + ".original" + Path.GetExtension(image));
        File.Copy(image, copy, overwrite: true);
        return copy;
    }

    private static async Task AssertFormat(string image, string format)
    {
        using JsonDocument info = JsonDocument.Parse((await Ok(QemuImg("info", "--output=json", image))).Out);
        Assert.Equal(format, info.RootElement.GetProperty("format").GetString());
    }

    private static async Task AssertSame(string original, string image) => await Ok(QemuImg("compare", original, image));

    private static async Task AssertCheckClean(string image)
    {
        RunResult theirs = await QemuImg("check", image);
        Assert.True(theirs.ExitCode == 0, theirs.ToString());
        RunResult ours = await Imgtool("check", image);
        Assert.True(ours.ExitCode == 0, ours.ToString());
    }

    private static async Task<RunResult> Ok(Task<RunResult> run)
    {
        RunResult result = await run;
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    /// <summary>imgtool as a separate process (the test's own build), with the crash hook set.</summary>
    private static async Task<RunResult> ChildImgtool(int crashAfter, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "imgtool.dll");
        var start = new ProcessStartInfo("dotnet", ["exec", dll, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["IMGTOOL_AMEND_CRASH_AFTER"] = crashAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["DOTNET_DbgEnableMiniDump"] = "0";
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return new RunResult(process.ExitCode, await stdout, await stderr);
    }
}

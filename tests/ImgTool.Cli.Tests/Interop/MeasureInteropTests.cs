using System.Text.Json;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// `imgtool measure` against the real qemu-img for the formats qemu-img measures (raw, qcow2, luks: the same text and
/// the same JSON, on the same inputs), and against what `imgtool convert` then really produces for every other
/// writable format (measure, convert, add up the lengths of the files convert made).
/// </summary>
public sealed class MeasureInteropTests : IDisposable
{
    private const string Secret = "secret,id=sec0,data=measure-pw";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, string> EmptyDisks => new()
    {
        { "qcow2", "" },
        { "qcow2", "cluster_size=512" },
        { "qcow2", "cluster_size=4k" },
        { "qcow2", "cluster_size=16k,extended_l2=on" },
        { "qcow2", "cluster_size=2M" },
        { "qcow2", "refcount_bits=1" },
        { "qcow2", "refcount_bits=64,cluster_size=8k" },
        { "qcow2", "compat=0.10" },
        { "qcow2", "preallocation=metadata" },
        { "qcow2", "preallocation=falloc" },
        { "qcow2", "preallocation=full,cluster_size=1M" },
        { "qcow2", "lazy_refcounts=on,compression_type=zstd" },
        { "qcow2", "backing_file=base.qcow2" },
        { "qcow2", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10" },
        { "qcow2", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.cipher-alg=aes-128,encrypt.iter-time=10,cluster_size=4k" },
        { "luks", "key-secret=sec0,iter-time=10" },
        { "luks", "key-secret=sec0,cipher-alg=aes-128,iter-time=10" },
        { "luks", "key-secret=sec0,cipher-alg=aes-256,cipher-mode=cbc,iter-time=10" },
        { "raw", "" },
    };

    [Theory]
    [MemberData(nameof(EmptyDisks))]
    public async Task Size_only_measure_prints_what_qemu_prints(string format, string options)
    {
        // qemu-img measures LUKS by running a whole create with PBKDF calibration (seconds each), so encrypted
        // variants are measured at fewer sizes.
        bool encrypted = options.Contains("secret", StringComparison.Ordinal);
        foreach (string size in encrypted ? new[] { "1001", "1G" } : new[] { "0", "1001", "1G", "100G" })
        {
            foreach (string output in size == "1G" ? new[] { "human", "json" } : new[] { "json" })
            {
                string[] args = ["measure", "--object", Secret, "--output", output, "-O", format, .. Options(options), "--size", size];
                RunResult theirs = await QemuMeasure(args);
                RunResult ours = await Imgtool(args);
                Assert.True(theirs.ExitCode == 0, theirs.ToString());
                Assert.True(ours.ExitCode == 0, ours.ToString());
                Assert.Equal(theirs.Out, ours.Out);
            }
        }
    }

    public static TheoryData<string, string> SourceTargets => new()
    {
        { "qcow2", "" },
        { "qcow2", "cluster_size=512" },
        { "qcow2", "cluster_size=4k" },
        { "qcow2", "cluster_size=2M" },
        { "qcow2", "cluster_size=32k,extended_l2=on" },
        { "qcow2", "compat=0.10" },
        { "qcow2", "preallocation=full" },
        { "qcow2", "backing_file=other.qcow2" },
        { "qcow2", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10" },
        { "luks", "key-secret=sec0,iter-time=10" },
        { "raw", "" },
    };

    public static TheoryData<string, string, string> SourcesAndTargets
    {
        get
        {
            var data = new TheoryData<string, string, string>();
            foreach (string source in new[] { "qcow2", "qcow2-chain", "qcow2-v2", "raw", "vmdk" })
            {
                foreach (object[] target in SourceTargets)
                {
                    data.Add(source, (string)target[0], (string)target[1]);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(SourcesAndTargets))]
    public async Task Measure_of_a_source_equals_qemus(string source, string format, string options)
    {
        string path = await MakeSource(source);
        foreach (string output in options.Contains("secret", StringComparison.Ordinal) ? new[] { "json" } : new[] { "human", "json" })
        {
            string[] args = ["measure", "--object", Secret, "--output", output, "-O", format, .. Options(options), path];
            RunResult theirs = await QemuMeasure(args);
            RunResult ours = await Imgtool(args);
            Assert.True(theirs.ExitCode == 0, theirs.ToString());
            Assert.True(ours.ExitCode == 0, ours.ToString());
            Assert.Equal(theirs.Out, ours.Out);
        }
    }

    [Fact]
    public async Task Bitmaps_of_a_qcow2_source_are_measured_as_qemu_does()
    {
        string path = await MakeSource("qcow2");
        await Ok(QemuImg("bitmap", "--add", path, "b1"));
        await Ok(QemuImg("bitmap", "--add", "-g", "4096", path, "a-longer-bitmap-name"));
        await Ok(QemuImg("bitmap", "--add", "-g", "512", "--disable", path, "b3"));
        foreach (string options in new[] { "", "cluster_size=512", "cluster_size=2M", "compat=0.10" })
        {
            string[] args = ["measure", "--output", "json", "-O", "qcow2", .. Options(options), path];
            RunResult theirs = await QemuMeasure(args);
            RunResult ours = await Imgtool(args);
            Assert.True(theirs.ExitCode == 0 && ours.ExitCode == 0, theirs + "\n" + ours);
            Assert.Equal(theirs.Out, ours.Out);
            if (options != "compat=0.10")
            {
                Assert.True(JsonDocument.Parse(ours.Out).RootElement.GetProperty("bitmaps").GetInt64() > 0, ours.Out);
            }
        }

        RunResult human = await Imgtool("measure", "-O", "qcow2", path);
        Assert.Equal((await QemuImg("measure", "-O", "qcow2", path)).Out, human.Out);
        Assert.Contains("bitmaps size: ", human.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_internal_snapshot_is_measured_as_qemu_does()
    {
        string path = await MakeSource("qcow2");
        await Ok(QemuImg("snapshot", "-c", "before", path));
        await Ok(Qemu("qemu-io", "-c", "write -P 0x44 12M 3M", path));
        foreach (string selector in new[] { "before", "snapshot.name=before", "1" })
        {
            string[] args = ["measure", "--output", "json", "-O", "qcow2", "-l", selector, path];
            RunResult theirs = await QemuMeasure(args);
            RunResult ours = await Imgtool(args);
            Assert.True(theirs.ExitCode == 0 && ours.ExitCode == 0, theirs + "\n" + ours);
            Assert.Equal(theirs.Out, ours.Out);
        }

        Assert.NotEqual((await Imgtool("measure", "-O", "qcow2", path)).Out, (await Imgtool("measure", "-O", "qcow2", "-l", "before", path)).Out);
    }

    public static TheoryData<string, string, string> SimulatedFormats => new()
    {
        { "vmdk", "", "vmdk" },
        { "vmdk", "subformat=monolithicFlat", "vmdk" },
        { "vmdk", "subformat=twoGbMaxExtentSparse", "vmdk" },
        { "vmdk", "subformat=twoGbMaxExtentFlat", "vmdk" },
        { "vmdk", "subformat=streamOptimized", "vmdk" },
        { "vmdk", "subformat=monolithicSparse,zeroed_grain=on", "vmdk" },
        { "vmdk", "subformat=vmfs", "vmdk" },
        { "vpc", "", "vhd" },
        { "vpc", "subformat=fixed", "vhd" },
        { "vpc", "force_size=on", "vhd" },
        { "vhdx", "", "vhdx" },
        { "vhdx", "subformat=fixed", "vhdx" },
        { "vhdx", "block_size=1M,log_size=1M", "vhdx" },
        { "vdi", "", "vdi" },
        { "vdi", "static=on", "vdi" },
        { "qed", "", "qed" },
        { "qed", "cluster_size=4k,table_size=2", "qed" },
    };

    [Theory]
    [MemberData(nameof(SimulatedFormats))]
    public async Task Measure_equals_the_size_convert_produces(string format, string options, string extension)
    {
        string source = await MakeSource("qcow2");
        JsonElement measured = await MeasureJson(["-O", format, .. Options(options), source]);
        Assert.Equal(await ConvertedBytes(source, format, options, extension), measured.GetProperty("required").GetInt64());

        // Fully allocated: the size convert makes of a disk with data (that does not compress) everywhere.
        string full = _dir.File("full.raw");
        await File.WriteAllBytesAsync(full, RandomBytes(21 << 20));
        Assert.Equal(await ConvertedBytes(full, format, options, extension), measured.GetProperty("fully-allocated").GetInt64());

        // --size: what convert makes of an empty disk of that size.
        string empty = _dir.File("empty.raw");
        await Ok(QemuImg("create", "-f", "raw", empty, "21M"));
        JsonElement sized = await MeasureJson(["-O", format, .. Options(options), "--size", "21M"]);
        Assert.Equal(await ConvertedBytes(empty, format, options, extension), sized.GetProperty("required").GetInt64());
        Assert.Equal(measured.GetProperty("fully-allocated").GetInt64(), sized.GetProperty("fully-allocated").GetInt64());
        Assert.False(measured.TryGetProperty("bitmaps", out _));
    }

    [Fact]
    public async Task Zero_data_the_source_stores_is_left_out_as_convert_leaves_it_out()
    {
        // A raw source whose data includes whole zero granules: qcow2's figure (QEMU's) counts them, the simulated
        // formats' figure does not, because convert does not write them.
        string source = _dir.File("zeros.raw");
        await File.WriteAllBytesAsync(source, new byte[8 << 20]);
        await Ok(Qemu("qemu-io", "-f", "raw", "-c", "write -P 0x11 1M 512", source));
        JsonElement vdi = await MeasureJson(["-O", "vdi", source]);
        Assert.Equal(await ConvertedBytes(source, "vdi", "", "vdi"), vdi.GetProperty("required").GetInt64());
        Assert.True(vdi.GetProperty("required").GetInt64() < vdi.GetProperty("fully-allocated").GetInt64());
    }

    public static TheoryData<string[]> BadInput => new()
    {
        new[] { "measure", "-O", "qcow2" },
        new[] { "measure", "-O", "qcow2", "--size", "1G", "SOURCE" },
        new[] { "measure", "-O", "qcow2", "-o", "no_such_option=1", "--size", "1G" },
        new[] { "measure", "-O", "qcow2", "-o", "cluster_size=3000", "--size", "1G" },
        new[] { "measure", "-O", "qcow2", "-o", "compat=0.10,refcount_bits=8", "--size", "1G" },
        new[] { "measure", "-O", "qcow2", "-o", "cluster_size=512", "--size", "100T" },
        new[] { "measure", "-O", "qcow2", "-o", "preallocation=bogus", "--size", "1G" },
        new[] { "measure", "-O", "luks", "--size", "1G" },
        new[] { "measure", "-O", "luks", "-o", "key-secret=missing", "--size", "1G" },
        new[] { "measure", "-O", "qcow2", "MISSING" },
        new[] { "measure", "-O", "qcow2", "-l", "nosuch", "SOURCE" },
        new[] { "measure", "-O", "qcow2", "--size", "-5" },
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public async Task Bad_input_fails_in_both_with_one_line(string[] template)
    {
        string source = await MakeSource("qcow2");
        string[] args = [.. template.Select(a => a == "SOURCE" ? source : a == "MISSING" ? _dir.File("missing.qcow2") : a)];
        RunResult theirs = await QemuMeasure(args);
        RunResult ours = await Imgtool(args);
        Assert.NotEqual(0, theirs.ExitCode);
        Assert.True(ours.ExitCode != 0, ours.ToString());
        Assert.Empty(ours.Out);
        Assert.StartsWith("imgtool: ", ours.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Formats_imgtool_only_reads_are_refused()
    {
        RunResult ours = await Imgtool("measure", "-O", "dmg", "--size", "1M");
        Assert.NotEqual(0, ours.ExitCode);
        Assert.Contains("read-only format", ours.Err, StringComparison.Ordinal);
    }

    private async Task<JsonElement> MeasureJson(string[] args)
    {
        RunResult ours = await Imgtool(["measure", "--output", "json", .. args]);
        Assert.True(ours.ExitCode == 0, ours.ToString());
        return JsonDocument.Parse(ours.Out).RootElement.Clone();
    }

    /// <summary>Converts into a folder of its own and adds up the lengths of every file convert made there.</summary>
    private async Task<long> ConvertedBytes(string source, string format, string options, string extension)
    {
        string folder = _dir.File("convert-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        await Ok(Imgtool(["convert", "-O", format, .. Options(options), source, Path.Combine(folder, "disk." + extension)]));
        return Directory.GetFiles(folder).Sum(f => new FileInfo(f).Length);
    }

    /// <summary>21 MiB sources with data, zero ranges and holes; qcow2 ones with zero clusters and compressed clusters,
    /// a chain whose backing file holds data the top does not, and a v2 image (no bitmaps figure).</summary>
    private async Task<string> MakeSource(string kind)
    {
        string path = _dir.File("source-" + kind);
        switch (kind)
        {
            case "raw":
                SparseFile(path, 21 << 20, (0, 1 << 20), (5 << 20, 70 << 10), (9 << 20, 512), ((21 << 20) - 4096, 4096));
                break;
            case "vmdk":
                await Ok(QemuImg("create", "-f", "vmdk", path, "21M"));
                await Ok(Qemu("qemu-io", "-f", "vmdk", "-c", "write -P 1 0 1M", "-c", "write -P 2 7M 100k", path));
                break;
            case "qcow2-chain":
                string basePath = _dir.File("chain-base.qcow2");
                await Ok(QemuImg("create", "-f", "qcow2", basePath, "21M"));
                await Ok(Qemu("qemu-io", "-c", "write -P 5 2M 3M", "-c", "write -P 6 15M 1M", basePath));
                await Ok(QemuImg("create", "-f", "qcow2", "-b", basePath, "-F", "qcow2", path));
                await Ok(Qemu("qemu-io", "-c", "write -P 7 0 64k", "-c", "write -z 2M 1M", "-c", "write -P 8 4M 2M", path));
                break;
            default:
                await Ok(QemuImg("create", "-f", "qcow2", "-o", kind == "qcow2-v2" ? "compat=0.10" : "compat=1.1", path, "21M"));
                await Ok(Qemu("qemu-io", "-c", "write -P 1 0 1M", "-c", "write -P 2 3M 100k", "-c", "write -z 6M 2M", "-c", "write -c -P 3 10M 128k", "-c", "write -P 4 20M 4k", path));
                break;
        }

        return path;
    }

    /// <summary>qemu-img measure for LUKS runs PBKDF calibration, which fails now and then on a loaded machine ("Unable
    /// to get accurate CPU usage"; Tools retries five times): more attempts here, where every LUKS case pays it.</summary>
    private static async Task<RunResult> QemuMeasure(string[] args)
    {
        RunResult result = await QemuImg(args);
        for (int attempt = 0; attempt < 6 && result.ExitCode != 0 && result.Err.Contains("Unable to get accurate CPU usage", StringComparison.Ordinal); attempt++)
        {
            await Task.Delay(200);
            result = await QemuImg(args);
        }

        return result;
    }

    [Fact]
    public async Task An_encrypted_qcow2_source_is_measured_with_its_key_as_qemu_does()
    {
        string path = _dir.File("encrypted.qcow2");
        await Ok(Imgtool("create", "--object", Secret, "-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", path, "10M"));
        string opts = $"driver=qcow2,file.filename={path},encrypt.key-secret=sec0";
        await Ok(Qemu("qemu-io", "--object", Secret, "--image-opts", "-c", "write -P 1 0 1M", "-c", "write -P 2 5M 64k", opts));
        string[] args = ["measure", "--object", Secret, "--image-opts", "--output", "json", "-O", "qcow2", opts];
        RunResult theirs = await QemuMeasure(args);
        RunResult ours = await Imgtool(args);
        Assert.True(theirs.ExitCode == 0 && ours.ExitCode == 0, theirs + "\n" + ours);
        Assert.Equal(theirs.Out, ours.Out);

        // Without the key imgtool refuses, as qemu-img does: the image cannot be opened to read its allocation.
        RunResult keyless = await Imgtool("measure", "-O", "qcow2", path);
        Assert.NotEqual(0, keyless.ExitCode);
        Assert.Contains("key-secret", keyless.Err, StringComparison.Ordinal);
    }

    private static string[] Options(string options) => options.Length == 0 ? [] : ["-o", options];

    private static byte[] RandomBytes(int length)
    {
        byte[] bytes = new byte[length];
        new Random(7).NextBytes(bytes);
        return bytes;
    }

    private static async Task Ok(Task<RunResult> run)
    {
        RunResult result = await run;
        Assert.True(result.ExitCode == 0, result.ToString());
    }
}

/// <summary>qcow2's measure formula against qemu-img's over random sizes and layouts.</summary>
public sealed class MeasureFormulaPropertyTests
{
    [FsCheck.Xunit.Property(MaxTest = 40)]
    public bool Qcow2_size_measure_equals_qemus_for_any_size_and_layout(uint sizeSeed, byte clusterSeed, byte refcountSeed, bool extendedL2, bool v2)
    {
        int clusterBits = 9 + (clusterSeed % 13);
        if (extendedL2)
        {
            clusterBits = Math.Max(clusterBits, 14);
        }

        int refcountBits = v2 ? 16 : 1 << (refcountSeed % 7);
        long size = (long)sizeSeed * (1 + (clusterSeed % 64));
        string options = $"cluster_size={1 << clusterBits},refcount_bits={refcountBits},compat={(v2 ? "0.10" : "1.1")}" + (extendedL2 && !v2 ? ",extended_l2=on" : string.Empty);
        string[] args = ["measure", "--output", "json", "-O", "qcow2", "-o", options, "--size", size.ToString(System.Globalization.CultureInfo.InvariantCulture)];
        RunResult theirs = QemuImg(args).GetAwaiter().GetResult();
        RunResult ours = Imgtool(args).GetAwaiter().GetResult();
        return theirs.ExitCode == ours.ExitCode && (theirs.ExitCode != 0 || theirs.Out == ours.Out);
    }
}

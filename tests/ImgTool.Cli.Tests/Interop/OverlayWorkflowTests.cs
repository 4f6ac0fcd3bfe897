using System.Diagnostics;
using System.Text.Json;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// commit, rebase and resize end to end: a base, an overlay made with -b, writes, commit, commit -b into a
/// grandparent, a safe rebase onto another base, rebase -b "", resize grow and shrink. After every step the image is
/// compared with an in-memory model of the guest's disk (written out as raw) by `qemu-img compare`, and checked by
/// `qemu-img check`; commit and rebase also run with the real qemu-img on copies, and both results must be equal.
/// </summary>
public sealed class OverlayWorkflowTests : IDisposable
{
    private const int MiB = 1 << 20;
    private const long DiskBytes = 16 * MiB;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("qcow2", "qcow2")]
    [InlineData("qcow2", "raw")]
    [InlineData("qed", "qcow2")]
    public async Task Create_write_commit_commit_b_rebase_flatten_resize_match_the_model_and_qemu(string overlayFormat, string baseFormat)
    {
        byte[] model = new byte[DiskBytes];
        string baseImage = _dir.File($"base.{baseFormat}");
        await Ok(Imgtool("create", "-q", "-f", baseFormat, baseImage, "16M"));
        await Write(baseImage, baseFormat, model, 0x11, 0, 4 * MiB);
        await AssertModel(baseImage, baseFormat, model);

        // An overlay made with -b, written to: the model follows the overlay.
        string top = _dir.File($"top.{overlayFormat}");
        await Ok(Imgtool("create", "-q", "-f", overlayFormat, "-b", Path.GetFileName(baseImage), "-F", baseFormat, top));
        await Write(top, overlayFormat, model, 0x22, 1 * MiB, 512 * 1024);
        await Write(top, overlayFormat, model, 0x23, 6 * MiB, 2 * MiB);
        await Zero(top, overlayFormat, model, 2 * MiB, 64 * 1024);
        await AssertModel(top, overlayFormat, model);

        // commit: the base takes the overlay's data; the overlay reads the same (emptied when it is qcow2).
        await BothTools(["commit", "-q", "-f", overlayFormat, top], top, baseImage);
        await AssertModel(baseImage, baseFormat, model);
        await AssertModel(top, overlayFormat, model);
        if (overlayFormat == "qcow2")
        {
            Assert.All(await Map(top), e => Assert.NotEqual(0, e.GetProperty("depth").GetInt32()));
        }

        // A chain base <- mid <- top2, written at both levels; commit -b base copies both layers into base.
        string mid = _dir.File($"mid.{overlayFormat}");
        await Ok(Imgtool("create", "-q", "-f", overlayFormat, "-b", Path.GetFileName(baseImage), "-F", baseFormat, mid));
        await Write(mid, overlayFormat, model, 0x31, 9 * MiB, 1 * MiB);
        string top2 = _dir.File($"top2.{overlayFormat}");
        await Ok(Imgtool("create", "-q", "-f", overlayFormat, "-b", Path.GetFileName(mid), "-F", overlayFormat, top2));
        await Write(top2, overlayFormat, model, 0x32, 9 * MiB + (256 * 1024), 4096);
        await Write(top2, overlayFormat, model, 0x33, 12 * MiB, 1 * MiB);
        await AssertModel(top2, overlayFormat, model);
        await BothTools(["commit", "-q", "-b", baseImage, top2], top2, mid, baseImage);
        await AssertModel(baseImage, baseFormat, model);
        await AssertModel(top2, overlayFormat, model);

        // Safe rebase onto another base with other contents: the overlay still reads the same.
        string other = _dir.File("other.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", other, "16M"));
        await Ok(Qemu("qemu-io", "-f", "qcow2", "-c", "write -P 0x77 0 16M", other));
        await BothTools(["rebase", "-f", overlayFormat, "-b", "other.qcow2", "-F", "qcow2", top2], top2);
        await AssertModel(top2, overlayFormat, model);
        Assert.Equal("other.qcow2", (await Info(top2)).GetProperty("backing-filename").GetString());

        // rebase -b "": the overlay holds everything and names no backing file.
        await BothTools(["rebase", "-f", overlayFormat, "-b", string.Empty, top2], top2);
        await AssertModel(top2, overlayFormat, model);
        Assert.False((await Info(top2)).TryGetProperty("backing-filename", out _));

        // resize: growing reads old data plus zeros; shrinking keeps the data before the new end; growing again
        // reads zeros where the cut data was.
        await Ok(Imgtool("resize", "-q", "-f", overlayFormat, top2, "+4M"));
        Array.Resize(ref model, (int)DiskBytes + (4 * MiB));
        await AssertModel(top2, overlayFormat, model);
        if (overlayFormat != "qed")
        {
            await Ok(Imgtool("resize", "-q", "--shrink", "-f", overlayFormat, top2, "12582400"));
            Array.Resize(ref model, 12582400);
            await AssertModel(top2, overlayFormat, model);
            await Ok(Imgtool("resize", "-q", "-f", overlayFormat, top2, "16M"));
            Array.Resize(ref model, (int)DiskBytes);
            await AssertModel(top2, overlayFormat, model);
        }
    }

    [Theory]
    [InlineData("raw", "")]
    [InlineData("qcow2", "")]
    [InlineData("qcow2", "cluster_size=4096")]
    [InlineData("qcow2", "compat=0.10")]
    [InlineData("qcow2", "cluster_size=512")]
    [InlineData("qed", "")]
    public async Task Resize_grows_and_the_result_checks_clean_and_reads_old_data_plus_zeros(string format, string options)
    {
        string image = _dir.File("disk." + format);
        string[] createOptions = options.Length == 0 ? [] : ["-o", options];
        await Ok(QemuImg(["create", "-q", "-f", format, .. createOptions, image, "3M"]));
        byte[] model = new byte[3 * MiB];
        await Write(image, format, model, 0x5a, 0, 1 * MiB);
        await Write(image, format, model, 0x5b, (3 * MiB) - 4096, 4096);

        // Large enough that a qcow2 with 512-byte clusters needs a bigger L1 table.
        RunResult resized = await Ok(Imgtool("resize", "-f", format, image, "+61M"));
        Assert.Equal("Image resized.\n", resized.Out);
        Array.Resize(ref model, 64 * MiB);
        await AssertModel(image, format, model);
        Assert.Equal(64L * MiB, (await Info(image)).GetProperty("virtual-size").GetInt64());

        // qemu-img writes there afterwards as it would to any image of that size.
        await Write(image, format, model, 0x5c, 63 * MiB, 1 * MiB);
        await AssertModel(image, format, model);
    }

    /// <summary>Formats qemu-img cannot resize: the result must open in qemu-img, check clean where qemu-img checks
    /// the format, read the old data plus zeros through qemu-img, and take qemu-io's writes in the grown area.</summary>
    [Theory]
    [InlineData("vpc", "subformat=fixed")]
    [InlineData("vpc", "subformat=dynamic")]
    [InlineData("vdi", "static=off")]
    [InlineData("vdi", "static=on")]
    [InlineData("vhdx", "subformat=dynamic")]
    [InlineData("vmdk", "subformat=monolithicSparse")]
    [InlineData("vmdk", "subformat=monolithicFlat")]
    public async Task Resize_grows_formats_qemu_img_cannot_resize(string format, string options)
    {
        string image = _dir.File("disk." + format);
        await Ok(QemuImg("create", "-q", "-f", format, "-o", options, image, "16M"));
        long oldSize = (await OurInfo(image)).GetProperty("virtual-size").GetInt64();
        byte[] model = new byte[48 * MiB];
        await Write(image, format, model, 0x5a, 0, 1 * MiB);
        await Write(image, format, model, 0x5b, oldSize - 4096, 4096);
        Assert.Equal(1, (await QemuImg("resize", "-f", format, image, "48M")).ExitCode); // qemu-img: "does not support resize"

        await Ok(Imgtool("resize", "-q", "-f", format, image, "48M"));
        Assert.Equal(48L * MiB, (await OurInfo(image)).GetProperty("virtual-size").GetInt64());
        long theirSize = (await Info(image)).GetProperty("virtual-size").GetInt64();

        // qemu-img 7.2 counts a fixed VHD's footer into its virtual size.
        Assert.Equal(options == "subformat=fixed" ? (48L * MiB) + 512 : 48L * MiB, theirSize);
        await AssertReadsPrefix(image, format, model);
        await Write(image, format, model, 0x5c, 47 * MiB, 1 * MiB);
        await AssertReadsPrefix(image, format, model);
        if (format != "vpc")
        {
            await Ok(QemuImg("check", "-f", format, image));
        }

        Assert.Equal(0, (await Imgtool("check", "-f", format, image)).ExitCode);
    }

    [Theory]
    [InlineData("vpc", "subformat=dynamic", "300M")]
    [InlineData("vdi", "static=off", "200M")]
    [InlineData("qed", "cluster_size=4096,table_size=4", "32G")]
    [InlineData("vmdk", "subformat=monolithicSparse", "8G")]
    public async Task Growing_past_what_the_tables_can_map_is_refused_and_changes_nothing(string format, string options, string size)
    {
        string image = _dir.File("disk." + format);
        await Ok(QemuImg("create", "-q", "-f", format, "-o", options, image, "16M"));
        await Ok(Qemu("qemu-io", "-f", format, "-c", "write -P 0x41 0 1M", image));
        string before = Hash(image);
        RunResult refused = await Imgtool("resize", "-f", format, image, size);
        Assert.Equal(1, refused.ExitCode);
        Assert.Single(refused.Err.TrimEnd('\n').Split('\n'));
        Assert.Equal(before, Hash(image));
    }

    /// <summary>Reads the image through qemu-img (convert to raw) and compares it with the model; the image may be
    /// longer than the model only by what qemu-img counts in (a fixed VHD's footer).</summary>
    private async Task AssertReadsPrefix(string image, string format, byte[] model)
    {
        string raw = _dir.File("read.raw");
        File.Delete(raw);
        await Ok(QemuImg("convert", "-f", format, "-O", "raw", image, raw));
        byte[] read = await File.ReadAllBytesAsync(raw);
        Assert.True(read.Length >= model.Length, $"qemu-img reads {read.Length} bytes, expected {model.Length}");
        Assert.True(read.AsSpan(0, model.Length).SequenceEqual(model), "the image does not read as the model");
    }

    private static async Task<JsonElement> OurInfo(string image) =>
        JsonDocument.Parse((await Ok(Imgtool("info", "--output=json", image))).Out).RootElement.Clone();

    [Fact]
    public async Task Resize_grows_a_luks_image_with_encrypted_zeros()
    {
        const string Secret = "secret,id=s0,data=pw";
        string image = _dir.File("disk.luks");
        string opts = $"driver=luks,file.filename={image},key-secret=s0";
        await Ok(QemuImg("create", "-q", "-f", "luks", "--object", Secret, "-o", "key-secret=s0,iter-time=10", image, "2M"));
        await Ok(Qemu("qemu-io", "--object", Secret, "--image-opts", "-c", "write -P 0x61 0 1M", opts));
        string before = _dir.File("before.raw");
        await Ok(QemuImg("convert", "--object", Secret, "--image-opts", opts, "-O", "raw", before));
        await Ok(Imgtool("resize", "-q", "--object", Secret, "--image-opts", opts, "+2M"));

        // qemu-img's create leaves the payload unwritten, so its old area decrypts to noise; the grown area reads zeros.
        string raw = _dir.File("luks.raw");
        await Ok(QemuImg("convert", "--object", Secret, "--image-opts", opts, "-O", "raw", raw));
        byte[] expected = new byte[4 * MiB];
        (await File.ReadAllBytesAsync(before)).CopyTo(expected, 0);
        Assert.Equal(expected, await File.ReadAllBytesAsync(raw));
    }

    [Fact]
    public async Task Resize_follows_qemu_img_rules_for_shrink_snapshots_and_sizes()
    {
        string image = _dir.File("disk.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", image, "8M"));
        await Ok(Qemu("qemu-io", "-c", "write -P 0x41 0 8M", image));
        string before = Hash(image);

        // Shrinking without --shrink, to zero, by a non-sector size, with preallocation: refused, nothing changed.
        foreach (string[] args in new[] { new[] { image, "4M" }, [image, "-4M"], [image, "--", "-8M"], [image, "+1000"], ["--shrink", "--preallocation=full", image, "4M"], [image, "12X"] })
        {
            RunResult ours = await Imgtool(["resize", .. args]);
            RunResult theirs = await QemuImg(["resize", .. args]);
            Assert.True(ours.ExitCode != 0 && theirs.ExitCode != 0, $"{string.Join(' ', args)}: ours {ours} theirs {theirs}");
            Assert.StartsWith("imgtool: ", ours.Err, StringComparison.Ordinal);
            Assert.Single(ours.Err.TrimEnd('\n').Split('\n'));
            Assert.Equal(before, Hash(image));
        }

        // A v2 image with snapshots cannot be resized (its snapshots do not record their size); a v3 one can.
        string v2 = _dir.File("v2.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", "-o", "compat=0.10", v2, "8M"));
        await Ok(QemuImg("snapshot", "-c", "s1", v2));
        string v2Before = Hash(v2);
        RunResult refused = await Imgtool("resize", v2, "+1M");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("Can't resize a v2 image which has snapshots", refused.Err, StringComparison.Ordinal);
        Assert.Equal(v2Before, Hash(v2));

        await Ok(QemuImg("snapshot", "-c", "s1", image));
        await Ok(Imgtool("resize", "-q", image, "+1M"));
        await Ok(QemuImg("check", image));
        await Ok(QemuImg("snapshot", "-a", "s1", image));
        byte[] model = new byte[8 * MiB];
        model.AsSpan().Fill(0x41);
        await AssertModel(image, "qcow2", model);

        // QED cannot shrink, as in qemu-img.
        string qed = _dir.File("disk.qed");
        await Ok(QemuImg("create", "-q", "-f", "qed", qed, "8M"));
        RunResult qedShrink = await Imgtool("resize", "--shrink", qed, "4M");
        Assert.Equal(1, qedShrink.ExitCode);
        Assert.Contains("Shrinking images is currently not supported", qedShrink.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Shrink_with_shrink_drops_the_data_past_the_end_and_frees_its_clusters()
    {
        string ours = _dir.File("ours.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", ours, "64M"));
        await Ok(Qemu("qemu-io", "-c", "write -P 0x41 0 8M", "-c", "write -P 0x42 40M 8M", ours));
        string theirs = _dir.File("theirs.qcow2");
        File.Copy(ours, theirs);
        await Ok(Imgtool("resize", "-q", "--shrink", ours, "32M"));
        await Ok(QemuImg("resize", "-q", "--shrink", theirs, "32M"));
        await Ok(QemuImg("compare", ours, theirs));
        await Ok(QemuImg("check", ours));
        using JsonDocument check = JsonDocument.Parse((await QemuImg("check", "--output=json", ours)).Out);
        long allocated = check.RootElement.GetProperty("allocated-clusters").GetInt64();
        Assert.Equal(8 * MiB / 65536, allocated);
    }

    [Fact]
    public async Task Bad_input_gives_one_line_and_changes_nothing()
    {
        string lone = _dir.File("lone.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", lone, "4M"));
        await Ok(Qemu("qemu-io", "-c", "write -P 0x41 0 1M", lone));
        string before = Hash(lone);

        RunResult noBacking = await Imgtool("commit", lone);
        Assert.Equal(1, noBacking.ExitCode);
        Assert.Equal($"imgtool: {lone}: Image does not have a backing file\n", noBacking.Err);
        Assert.Equal(before, Hash(lone));

        string top = _dir.File("top.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", "-b", "lone.qcow2", "-F", "qcow2", top));
        await Ok(Qemu("qemu-io", "-c", "write -P 0x42 0 64k", top));
        string topBefore = Hash(top);
        RunResult missing = await Imgtool("rebase", "-b", "missing.qcow2", "-F", "qcow2", top);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("Could not open new backing file 'missing.qcow2'", missing.Err, StringComparison.Ordinal);
        Assert.Contains(_dir.File("missing.qcow2"), missing.Err, StringComparison.Ordinal); // the name as resolved
        Assert.Single(missing.Err.TrimEnd('\n').Split('\n'));
        Assert.Equal(topBefore, Hash(top));

        RunResult noFormat = await Imgtool("rebase", "-b", "lone.qcow2", top);
        Assert.Equal(1, noFormat.ExitCode);
        Assert.Contains("backing format must be specified", noFormat.Err, StringComparison.Ordinal);
        RunResult noB = await Imgtool("rebase", top);
        Assert.Equal(1, noB.ExitCode);
        Assert.Contains("Must specify backing file (-b) or use unsafe mode (-u)", noB.Err, StringComparison.Ordinal);

        RunResult notInChain = await Imgtool("commit", "-b", "nowhere.qcow2", top);
        Assert.Equal(1, notInChain.ExitCode);
        Assert.Contains("Did not find 'nowhere.qcow2' in the backing chain", notInChain.Err, StringComparison.Ordinal);

        string raw = _dir.File("plain.raw");
        await File.WriteAllBytesAsync(raw, new byte[MiB]);
        RunResult rawRebase = await Imgtool("rebase", "-f", "raw", "-u", "-b", "lone.qcow2", "-F", "qcow2", raw);
        Assert.Equal(1, rawRebase.ExitCode);
        Assert.Contains("does not store a backing file name", rawRebase.Err, StringComparison.Ordinal);
        Assert.Equal(topBefore, Hash(top));
        Assert.Equal(before, Hash(lone));
    }

    [Fact]
    public async Task Rebase_unsafe_only_rewrites_the_name_as_qemu_img_does()
    {
        string a = _dir.File("a.qcow2");
        string b = _dir.File("b.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", a, "4M"));
        await Ok(QemuImg("create", "-q", "-f", "qcow2", b, "4M"));
        await Ok(Qemu("qemu-io", "-c", "write -P 0x41 0 1M", a));
        string ours = _dir.File("ours.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", ours));
        string theirs = _dir.File("theirs.qcow2");
        File.Copy(ours, theirs);
        await Ok(Imgtool("rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", ours));
        await Ok(QemuImg("rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", theirs));
        Assert.Equal(await File.ReadAllBytesAsync(theirs), await File.ReadAllBytesAsync(ours));
    }

    [Fact]
    public async Task Output_json_of_commit_rebase_and_resize_says_what_changed()
    {
        string baseImage = _dir.File("base.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", baseImage, "4M"));
        string top = _dir.File("top.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top, "8M"));
        await Ok(Qemu("qemu-io", "-c", "write -P 0x41 0 1M", "-c", "write -z 1M 64k", "-c", "write -P 0x42 6M 1M", top));

        JsonElement commit = JsonDocument.Parse((await Ok(Imgtool("commit", "--output=json", top))).Out).RootElement;
        Assert.Equal(baseImage, commit.GetProperty("base").GetString());
        Assert.Equal(1, commit.GetProperty("base-depth").GetInt32());
        Assert.Equal(2L * MiB, commit.GetProperty("data-bytes").GetInt64());
        Assert.Equal(8L * MiB, commit.GetProperty("base-resized-to").GetInt64()); // the smaller base grew, as with qemu-img
        Assert.True(commit.GetProperty("emptied").GetBoolean());
        Assert.Equal(8L * MiB, (await Info(baseImage)).GetProperty("virtual-size").GetInt64());

        JsonElement rebase = JsonDocument.Parse((await Ok(Imgtool("rebase", "--output=json", "-b", string.Empty, top))).Out).RootElement;
        Assert.Equal("base.qcow2", rebase.GetProperty("old-backing-filename").GetString());
        Assert.Equal(JsonValueKind.Null, rebase.GetProperty("backing-filename").ValueKind);
        Assert.Equal(2L * MiB, rebase.GetProperty("copied-bytes").GetInt64());

        JsonElement resize = JsonDocument.Parse((await Ok(Imgtool("resize", "--output=json", top, "+1M"))).Out).RootElement;
        Assert.Equal(8L * MiB, resize.GetProperty("old-size").GetInt64());
        Assert.Equal(9L * MiB, resize.GetProperty("new-size").GetInt64());
        Assert.Equal("qcow2", resize.GetProperty("format").GetString());
    }

    [Fact]
    public async Task Progress_json_on_commit_and_rebase_ends_at_the_total()
    {
        string baseImage = _dir.File("base.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", baseImage, "8M"));
        string top = _dir.File("top.qcow2");
        await Ok(QemuImg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top));
        await Ok(Qemu("qemu-io", "-c", "write -P 0x41 1M 1M", top));
        foreach ((string phase, string[] args) in new[] { ("commit", new[] { "commit", "-q", "--progress=json", top }), ("rebase", ["rebase", "--progress=json", "-b", string.Empty, top]) })
        {
            RunResult run = await Ok(Imgtool(args));
            string[] lines = run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.NotEmpty(lines);
            JsonElement last = JsonDocument.Parse(lines[^1]).RootElement;
            Assert.Equal(phase, last.GetProperty("phase").GetString());
            Assert.Equal(8L * MiB, last.GetProperty("total").GetInt64());
            Assert.Equal(8L * MiB, last.GetProperty("done").GetInt64());
        }
    }

    /// <summary>
    /// commit in a separate imgtool process that dies (Environment.FailFast, as kill -9) right after its Nth write, for
    /// every N until it completes: each time both images check without corruption and the overlay reads as before,
    /// and a rerun of commit completes with the base holding the overlay's view.
    /// </summary>
    [Theory]
    [InlineData("commit")]
    [InlineData("rebase")]
    public async Task A_killed_commit_or_rebase_leaves_the_chain_readable_and_a_rerun_completes_it(string command)
    {
        string baseImage = _dir.File("base.qcow2");
        string top = _dir.File("top.qcow2");
        byte[] model = new byte[8 * MiB];
        await Ok(QemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", baseImage, "8M"));
        await Write(baseImage, "qcow2", model, 0x11, 0, 3 * MiB);
        await Ok(QemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "base.qcow2", "-F", "qcow2", top));
        foreach (int i in Enumerable.Range(0, 12))
        {
            await Write(top, "qcow2", model, (byte)(0x40 + i), (i * 640 * 1024) + 4096, 8192);
        }

        await Zero(top, "qcow2", model, 1 * MiB, 64 * 1024);
        string pristineBase = _dir.File("base.pristine");
        string pristineTop = _dir.File("top.pristine");
        File.Copy(baseImage, pristineBase);
        File.Copy(top, pristineTop);
        string[] args = command == "commit" ? ["commit", "-q", top] : ["rebase", "-b", string.Empty, top];
        string variable = command == "commit" ? "IMGTOOL_COMMIT_CRASH_AFTER" : "IMGTOOL_REBASE_CRASH_AFTER";

        int crashes = 0;
        bool completed = false;
        for (int n = 1; n < 100 && !completed; n++)
        {
            File.Copy(pristineBase, baseImage, overwrite: true);
            File.Copy(pristineTop, top, overwrite: true);
            RunResult run = await ChildImgtool(variable, n, args);
            completed = run.ExitCode == 0;
            Assert.True(completed || run.Err.Contains(variable, StringComparison.Ordinal), $"after write {n}: {run}");
            if (!completed)
            {
                crashes++;
                await AssertReadable(n);
                await Ok(Imgtool(args));
            }

            await AssertReadable(n);
            if (command == "commit")
            {
                // After a rerun the base holds the overlay's view; a crash may have leaked clusters (check exit 3), which
                // an uninterrupted run never does.
                await Ok(QemuImg("compare", "-f", "qcow2", "-F", "raw", baseImage, await ModelFile(model)));
                if (completed)
                {
                    await AssertModel(baseImage, "qcow2", model);
                }
            }
        }

        Assert.True(completed, "the command never completed");
        Assert.True(crashes >= 5, $"only {crashes} crash points");

        async Task AssertReadable(int n)
        {
            RunResult compare = await QemuImg("compare", "-f", "qcow2", "-F", "raw", top, await ModelFile(model));
            Assert.True(compare.ExitCode == 0, $"after write {n}: {compare}");
            foreach (string image in new[] { top, baseImage })
            {
                RunResult check = await QemuImg("check", image);
                Assert.True(check.ExitCode is 0 or 3, $"after write {n}: {image}: {check}");
            }
        }
    }

    /// <summary>Runs the command with imgtool and with qemu-img on copies of the listed files; afterwards every file
    /// must read the same as qemu-img's copy, compared by qemu-img itself.</summary>
    private async Task BothTools(string[] args, params string[] files)
    {
        string theirsDir = Path.Combine(_dir.Path, "theirs");
        if (Directory.Exists(theirsDir))
        {
            Directory.Delete(theirsDir, recursive: true);
        }

        Directory.CreateDirectory(theirsDir);
        foreach (string file in Directory.GetFiles(_dir.Path))
        {
            File.Copy(file, Path.Combine(theirsDir, Path.GetFileName(file)));
        }

        string[] theirArgs = [.. args.Select(a => files.Contains(a) ? Path.Combine(theirsDir, Path.GetFileName(a)) : a)];
        await Ok(Imgtool(args));
        await Ok(QemuImg(theirArgs));
        foreach (string file in files)
        {
            await Ok(QemuImg("compare", file, Path.Combine(theirsDir, Path.GetFileName(file))));
            RunResult check = await QemuImg("check", file);
            Assert.True(check.ExitCode == 0 || check.Err.Contains("does not support checks", StringComparison.Ordinal), $"{file}: {check}");
        }
    }

    private static async Task Write(string image, string format, byte[] model, byte pattern, long offset, int length)
    {
        await Ok(Qemu("qemu-io", "-f", format, "-c", $"write -P 0x{pattern:x2} {offset} {length}", image));
        model.AsSpan((int)offset, length).Fill(pattern);
    }

    private static async Task Zero(string image, string format, byte[] model, long offset, int length)
    {
        await Ok(Qemu("qemu-io", "-f", format, "-c", $"write -z {offset} {length}", image));
        model.AsSpan((int)offset, length).Clear();
    }

    private async Task<string> ModelFile(byte[] model)
    {
        string path = _dir.File("model.raw");
        await File.WriteAllBytesAsync(path, model);
        return path;
    }

    /// <summary>The image reads as the model, has its size and checks clean.</summary>
    private async Task AssertModel(string image, string format, byte[] model)
    {
        await Ok(QemuImg("compare", "-f", format, "-F", "raw", image, await ModelFile(model)));
        if (format != "raw")
        {
            await Ok(QemuImg("check", "-f", format, image));
        }

        Assert.Equal(model.LongLength, (await Info(image)).GetProperty("virtual-size").GetInt64());
    }

    private static async Task<JsonElement> Info(string image) =>
        JsonDocument.Parse((await Ok(QemuImg("info", "--output=json", image))).Out).RootElement.Clone();

    private static async Task<JsonElement[]> Map(string image) =>
        [.. JsonDocument.Parse((await Ok(QemuImg("map", "--output=json", image))).Out).RootElement.EnumerateArray().Select(e => e.Clone())];

    private static string Hash(string path) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)));

    private static async Task<RunResult> Ok(Task<RunResult> run)
    {
        RunResult result = await run;
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }

    /// <summary>imgtool as a separate process (the test's own build), with a crash hook set.</summary>
    private static async Task<RunResult> ChildImgtool(string variable, int crashAfter, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "imgtool.dll");
        var start = new ProcessStartInfo("dotnet", ["exec", dll, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment[variable] = crashAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["DOTNET_DbgEnableMiniDump"] = "0";
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return new RunResult(process.ExitCode, await stdout, await stderr);
    }
}

using System.Text.Json;
using ImgTool.Block.Devices;
using ImgTool.Formats;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>VDI images checked against the real qemu-img and qemu-io in both directions (static and dynamic; qemu-img
/// cannot open differencing VDIs, so those are checked through imgtool alone).</summary>
public sealed class VdiInteropTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Variants and sizes: whole blocks, a partial last block, and a size that is not a whole number of sectors.</summary>
    public static TheoryData<string, string> Variants => new()
    {
        { "static=off", "21M" },
        { "static=on", "21M" },
        { "static=off", "5000000" },
        { "static=on", "5000000" },
        { "static=off", "1000" },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task We_read_what_qemu_wrote_and_info_agrees(string options, string size)
    {
        string path = _dir.File("qemu.vdi");
        await Ok(QemuImg("create", "-f", "vdi", "-o", options, path, size));
        await WritePattern(path);

        using JsonDocument theirs = JsonDocument.Parse((await QemuImg("info", "--output=json", path)).Out);
        RunResult ours = await Imgtool("info", "--output=json", path);
        Assert.True(ours.ExitCode == 0, ours.ToString());
        using JsonDocument mine = JsonDocument.Parse(ours.Out);
        foreach (JsonProperty field in theirs.RootElement.EnumerateObject())
        {
            Assert.True(mine.RootElement.TryGetProperty(field.Name, out JsonElement value), $"missing field {field.Name}");
            Assert.Equal(field.Value.ToString(), value.ToString());
        }

        string theirCopy = _dir.File("theirs.raw");
        string ourCopy = _dir.File("ours.raw");
        await Ok(QemuImg("convert", "-f", "vdi", "-O", "raw", path, theirCopy));
        await Ok(Imgtool("convert", "-O", "raw", path, ourCopy));
        Assert.Equal(await File.ReadAllBytesAsync(theirCopy), await File.ReadAllBytesAsync(ourCopy));
        Assert.Equal(0, (await Imgtool("check", path)).ExitCode);
        await Ok(QemuImg("check", path));
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task Qemu_reads_what_we_create_and_write(string options, string size)
    {
        string ours = _dir.File("ours.vdi");
        string theirs = _dir.File("theirs.vdi");
        await Ok(Imgtool("create", "-f", "vdi", "-o", options, ours, size));
        await Ok(QemuImg("create", "-f", "vdi", "-o", options, theirs, size));
        Assert.Equal(new FileInfo(theirs).Length, new FileInfo(ours).Length);
        await Ok(QemuImg("check", ours));

        // qemu-io writes into our image; then imgtool writes the same into qemu's; both read the same.
        await WritePattern(ours);
        string raw = _dir.File("pattern.raw");
        await Ok(Imgtool("convert", "-O", "raw", ours, raw));
        await Ok(Imgtool("convert", "-n", "-O", "vdi", raw, theirs));
        await Ok(QemuImg("compare", "-f", "vdi", "-F", "vdi", ours, theirs));
        await Ok(QemuImg("check", theirs));
        Assert.Equal(0, (await Imgtool("compare", ours, theirs)).ExitCode);
        Assert.Equal(0, (await Imgtool("check", ours)).ExitCode);
    }

    [Theory]
    [InlineData("static=off")]
    [InlineData("static=on")]
    public async Task Convert_to_vdi_is_identical_for_qemu_img(string options)
    {
        string source = _dir.File("src.raw");
        SparseFile(source, (9 * MiB) + 4096, (0, 70000), ((3 * MiB) + 123, 5000), (6 * MiB, 2 * MiB), (9 * MiB, 4096));
        string target = _dir.File("out.vdi");
        await Ok(Imgtool("convert", "-O", "vdi", "-o", options, source, target));
        RunResult compare = await QemuImg("compare", "-f", "vdi", "-F", "raw", target, source);
        Assert.True(compare.ExitCode == 0, compare.ToString());
        await Ok(QemuImg("check", target));
        Assert.Equal(0, (await Imgtool("check", target)).ExitCode);
        using JsonDocument info = JsonDocument.Parse((await QemuImg("info", "--output=json", target)).Out);
        Assert.Equal((9 * MiB) + 4096, info.RootElement.GetProperty("virtual-size").GetInt64());

        // qemu-img's own conversion: the same file length (the same blocks allocated, in whole blocks).
        string theirs = _dir.File("theirs.vdi");
        await Ok(QemuImg("convert", "-f", "raw", "-O", "vdi", "-o", options, source, theirs));
        Assert.Equal(new FileInfo(theirs).Length, new FileInfo(target).Length);
        string back = _dir.File("back.raw");
        await Ok(Imgtool("convert", "-O", "raw", theirs, back));
        await Ok(QemuImg("compare", "-f", "raw", "-F", "raw", back, source));
    }

    [Theory]
    [InlineData("static=off")]
    [InlineData("static=on")]
    public async Task Map_is_the_same_text_as_qemu_img(string options)
    {
        string path = _dir.File("map.vdi");
        await Ok(QemuImg("create", "-f", "vdi", "-o", options, path, "6M"));
        await WritePattern(path);
        foreach (string output in new[] { "json", "human" })
        {
            RunResult theirs = await QemuImg("map", "--output", output, path);
            RunResult ours = await Imgtool("map", "--output", output, path);
            Assert.Equal(theirs.Out.Replace(path, "F", StringComparison.Ordinal), ours.Out.Replace(path, "F", StringComparison.Ordinal));
        }
    }

    /// <summary>Damaged block maps: both tools count the same corruptions and exit 2; our repair leaves an image qemu-img finds clean.</summary>
    [Theory]
    [InlineData(2u, 0u, 2)]      // block 2 shares slot 0 with block 1 (and the count no longer matches)
    [InlineData(3u, 5000u, 1)]   // block 3 names a slot past the block count (which the count leaves out)
    public async Task Check_counts_and_exit_codes_match_qemu_img_and_the_repair_satisfies_it(uint block, uint slot, int corruptions)
    {
        string path = _dir.File("bad.vdi");
        await Ok(QemuImg("create", "-f", "vdi", path, "5M"));
        await WritePattern(path);
        byte[] bytes = await File.ReadAllBytesAsync(path);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(512 + ((int)block * 4)), slot);
        await File.WriteAllBytesAsync(path, bytes);

        RunResult theirs = await QemuImg("check", "--output=json", path);
        RunResult ours = await Imgtool("check", "--output=json", path);
        Assert.Equal(2, theirs.ExitCode);
        Assert.Equal(theirs.ExitCode, ours.ExitCode);
        using JsonDocument a = JsonDocument.Parse(theirs.Out);
        using JsonDocument b = JsonDocument.Parse(ours.Out);
        Assert.Equal(corruptions, a.RootElement.GetProperty("corruptions").GetInt32());
        Assert.Equal(corruptions, b.RootElement.GetProperty("corruptions").GetInt32());

        Assert.Equal(63, (await QemuImg("check", "-r", "all", path)).ExitCode); // qemu repairs nothing
        RunResult repaired = await Imgtool("check", "-r", "all", path);
        Assert.True(repaired.ExitCode == 0, repaired.ToString());
        await Ok(QemuImg("check", path));
    }

    /// <summary>A differencing chain made by imgtool reads through its parent, byte for byte; qemu-img refuses the child.</summary>
    [Fact]
    public async Task A_differencing_chain_reads_through_the_parent()
    {
        string source = _dir.File("src.raw");
        byte[] model = SparseFile(source, (6 * MiB) + 512, (0, 3 * MiB), ((5 * MiB) + 7, 100000));
        string parent = _dir.File("base.vdi");
        string child = _dir.File("child.vdi");
        await Ok(Imgtool("convert", "-O", "vdi", source, parent));
        RunResult created = await Imgtool("create", "-f", "vdi", "-b", "base.vdi", "-F", "vdi", child);
        Assert.True(created.ExitCode == 0, created.ToString());

        var opener = new ImageOpener(FormatRegistry.Default);
        byte[] patch = new byte[10000];
        new Random(9).NextBytes(patch);
        await using (IImage image = await opener.OpenAsync(child, new ImageOpenRequest(ReadOnly: false)))
        {
            await image.WriteAsync(MiB + 333, patch);
            await image.WriteZeroesAsync(5 * MiB, MiB, BlockZeroFlags.None);
        }

        patch.CopyTo(model, MiB + 333);
        Array.Clear(model, 5 * MiB, MiB);
        string flat = _dir.File("flat.raw");
        await Ok(Imgtool("convert", "-O", "raw", child, flat));
        Assert.Equal(model, await File.ReadAllBytesAsync(flat));

        using JsonDocument doc = JsonDocument.Parse((await Imgtool("info", "--output=json", child)).Out);
        Assert.Equal("base.vdi", doc.RootElement.GetProperty("backing-filename").GetString());
        Assert.Equal(0, (await Imgtool("check", child)).ExitCode);
        Assert.Equal(0, (await Imgtool("compare", flat, child)).ExitCode);

        // The parent is untouched and still clean for qemu-img; the child is a format qemu-img 7.2 does not open.
        await Ok(QemuImg("check", parent));
        RunResult refused = await QemuImg("info", child);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("link UUID", refused.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_option_help_lists_qemus_vdi_options()
    {
        RunResult help = await Imgtool("create", "-f", "vdi", "-o", "help");
        RunResult theirs = await QemuImg("create", "-f", "vdi", "-o", "help");
        Assert.Contains("static=<bool (on/off)> - VDI static (pre-allocated) image", help.Out, StringComparison.Ordinal);
        Assert.Contains("static=<bool (on/off)> - VDI static (pre-allocated) image", theirs.Out, StringComparison.Ordinal);
        RunResult created = await Imgtool("create", "-f", "vdi", _dir.File("x.vdi"), "1M");
        Assert.Equal($"Formatting '{_dir.File("x.vdi")}', fmt=vdi size=1048576 static=off\n", created.Out);
        Assert.NotEqual(0, (await Imgtool("create", "-f", "vdi", "-o", "preallocation=full", _dir.File("y.vdi"), "1M")).ExitCode);
    }

    /// <summary>A hostile image gives one line on stderr and a non-zero exit.</summary>
    [Fact]
    public async Task A_hostile_header_gives_one_line_and_a_non_zero_exit()
    {
        string path = _dir.File("hostile.vdi");
        await Ok(QemuImg("create", "-f", "vdi", path, "5M"));
        byte[] bytes = await File.ReadAllBytesAsync(path);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(0x180), 0x3fffffff); // a block map of 4 GiB
        await File.WriteAllBytesAsync(path, bytes);
        RunResult info = await Imgtool("info", path);
        Assert.NotEqual(0, info.ExitCode);
        Assert.Single(info.Err.Trim().Split('\n'));
        Assert.StartsWith("imgtool: ", info.Err, StringComparison.Ordinal);
    }

    private static async Task WritePattern(string path)
    {
        using JsonDocument info = JsonDocument.Parse((await QemuImg("info", "--output=json", path)).Out);
        long size = info.RootElement.GetProperty("virtual-size").GetInt64();
        var commands = new List<string> { "write -P 0xab 0 512" };
        if (size >= 5 * MiB)
        {
            commands.AddRange(["write -P 0xcd 1M 64k", "write -P 0x11 4194304 4k", "write -z 1088k 4k"]);
        }

        if (size >= 21 * MiB)
        {
            commands.Add("write -P 0x5a 20M 512");
        }

        commands.Add($"write -P 0x77 {(size - 512) / 512 * 512} 512");
        foreach (string command in commands)
        {
            RunResult r = await Qemu("qemu-io", "-f", "vdi", "-c", command, path);
            Assert.True(r.ExitCode == 0 && !r.Out.Contains("error", StringComparison.OrdinalIgnoreCase), r.ToString());
        }
    }

    private static async Task Ok(Task<RunResult> run)
    {
        RunResult r = await run;
        Assert.True(r.ExitCode == 0, r.ToString());
    }
}

using System.Buffers.Binary;
using System.Text.Json;
using ImgTool.Block.Devices;
using ImgTool.Formats;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>VHD (vpc) images checked against the real qemu-img and qemu-io in both directions.</summary>
public sealed class VhdInteropTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> Variants => ["subformat=dynamic", "subformat=dynamic,force_size=on", "subformat=fixed", "subformat=fixed,force_size=on"];

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task We_read_what_qemu_wrote_and_info_agrees(string options)
    {
        string path = _dir.File("qemu.vhd");
        await Ok(QemuImg("create", "-f", "vpc", "-o", options, path, "21M"));
        await WritePattern(path);

        // qemu-img 7.2 probes a fixed VHD as raw, so it is told the format; we find it ourselves.
        using JsonDocument theirs = JsonDocument.Parse((await QemuImg("info", "-f", "vpc", "--output=json", path)).Out);
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
        await Ok(QemuImg("convert", "-f", "vpc", "-O", "raw", path, theirCopy));
        await Ok(Imgtool("convert", "-O", "raw", path, ourCopy));
        Assert.Equal(await File.ReadAllBytesAsync(theirCopy), await File.ReadAllBytesAsync(ourCopy));
        Assert.Equal(0, (await Imgtool("check", path)).ExitCode);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task Qemu_reads_what_we_create_and_write(string options)
    {
        string ours = _dir.File("ours.vhd");
        string theirs = _dir.File("theirs.vhd");
        RunResult created = await Imgtool("create", "-f", "vpc", "-o", options, ours, "21M");
        Assert.True(created.ExitCode == 0, created.ToString());
        await Ok(QemuImg("create", "-f", "vpc", "-o", options, theirs, "21M"));
        Assert.Equal(new FileInfo(theirs).Length, new FileInfo(ours).Length);

        // qemu-io writes into our image; both must then read the same as qemu's own image with the same writes.
        await WritePattern(ours);
        await WritePattern(theirs);
        await Ok(QemuImg("compare", "-f", "vpc", "-F", "vpc", ours, theirs));
        Assert.Equal(0, (await Imgtool("compare", ours, theirs)).ExitCode);
        Assert.Equal(0, (await Imgtool("check", ours)).ExitCode);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task Convert_to_vpc_is_identical_for_qemu_img(string options)
    {
        string source = _dir.File("src.raw");
        byte[] model = SparseFile(source, 9 * MiB + 4096, (0, 70000), (3 * MiB + 123, 5000), (6 * MiB, 2 * MiB), (9 * MiB, 4096));
        string target = _dir.File("out.vhd");
        RunResult converted = await Imgtool("convert", "-O", "vpc", "-o", options, source, target);
        Assert.True(converted.ExitCode == 0, converted.ToString());

        // Without force_size the disk grows to a CHS-aligned size, as qemu-img's does; compare reads the tail as zeros.
        using JsonDocument info = JsonDocument.Parse((await QemuImg("info", "-f", "vpc", "--output=json", target)).Out);
        long size = info.RootElement.GetProperty("virtual-size").GetInt64();
        Assert.Equal(options.Contains("force_size", StringComparison.Ordinal) ? model.Length : CeilingChs(options, model.Length), size);
        RunResult compare = await QemuImg("compare", "-f", "vpc", "-F", "raw", target, source);
        Assert.True(compare.ExitCode == 0, compare.ToString());
        Assert.Equal(0, (await Imgtool("check", target)).ExitCode);

        string theirs = _dir.File("theirs.vhd");
        await Ok(QemuImg("convert", "-f", "raw", "-O", "vpc", "-o", options, source, theirs));
        Assert.Equal(new FileInfo(theirs).Length, new FileInfo(target).Length);
    }

    /// <summary>CHS rounding, force_size, sub-sector sizes and the 2040 GiB limit give qemu-img's sizes and file lengths.</summary>
    [Theory]
    [InlineData("force_size=off", "5")]
    [InlineData("force_size=off", "1048577")]
    [InlineData("force_size=on", "1000")]
    [InlineData("subformat=fixed", "1000")]
    [InlineData("subformat=fixed,force_size=on", "1048577")]
    [InlineData("force_size=off", "127G")]
    [InlineData("force_size=off", "130G")]
    [InlineData("force_size=on", "127G")]
    [InlineData("force_size=on", "2040G")]
    public async Task Create_sizes_match_qemu_img(string options, string size)
    {
        string ours = _dir.File("o.vhd");
        string theirs = _dir.File("q.vhd");
        await Ok(Imgtool("create", "-q", "-f", "vpc", "-o", options, ours, size));
        await Ok(QemuImg("create", "-q", "-f", "vpc", "-o", options, theirs, size));
        using JsonDocument a = JsonDocument.Parse((await QemuImg("info", "-f", "vpc", "--output=json", theirs)).Out);
        using JsonDocument b = JsonDocument.Parse((await QemuImg("info", "-f", "vpc", "--output=json", ours)).Out);
        Assert.Equal(a.RootElement.GetProperty("virtual-size").GetInt64(), b.RootElement.GetProperty("virtual-size").GetInt64());
        Assert.Equal(new FileInfo(theirs).Length, new FileInfo(ours).Length);
        Assert.NotEqual(0, (await Imgtool("create", "-q", "-f", "vpc", "-o", options, _dir.File("big.vhd"), "2041G")).ExitCode);
        Assert.False(File.Exists(_dir.File("big.vhd")));
    }

    [Fact]
    public async Task Map_of_a_qemu_made_dynamic_disk_is_the_same_text()
    {
        string path = _dir.File("map.vhd");
        await Ok(QemuImg("create", "-f", "vpc", path, "21M"));
        await WritePattern(path);
        foreach (string output in new[] { "json", "human" })
        {
            RunResult theirs = await QemuImg("map", "--output", output, path);
            RunResult ours = await Imgtool("map", "--output", output, path);
            Assert.Equal(theirs.Out.Replace(path, "F", StringComparison.Ordinal), ours.Out.Replace(path, "F", StringComparison.Ordinal));
        }
    }

    /// <summary>A differencing chain made by imgtool reads with its parent; qemu-img can only open the child alone.</summary>
    [Fact]
    public async Task A_differencing_chain_reads_through_the_parent()
    {
        string source = _dir.File("src.raw");
        byte[] model = SparseFile(source, 8 * MiB, (0, 3 * MiB), (5 * MiB, 100000));
        string parent = _dir.File("base.vhd");
        string child = _dir.File("child.vhd");
        await Ok(Imgtool("convert", "-O", "vpc", "-o", "force_size=on", source, parent));
        RunResult created = await Imgtool("create", "-f", "vpc", "-b", "base.vhd", "-F", "vpc", child);
        Assert.True(created.ExitCode == 0, created.ToString());

        var opener = new ImageOpener(FormatRegistry.Default);
        byte[] patch = new byte[10000];
        new Random(9).NextBytes(patch);
        await using (IImage image = await opener.OpenAsync(child, new ImageOpenRequest(ReadOnly: false)))
        {
            await image.WriteAsync(MiB + 333, patch);
            await image.WriteZeroesAsync(5 * MiB, 4096, BlockZeroFlags.None);
        }

        patch.CopyTo(model, MiB + 333);
        Array.Clear(model, 5 * MiB, 4096);
        string flat = _dir.File("flat.raw");
        await Ok(Imgtool("convert", "-O", "raw", child, flat));
        Assert.Equal(model, await File.ReadAllBytesAsync(flat));

        RunResult info = await Imgtool("info", "--output=json", child);
        using JsonDocument doc = JsonDocument.Parse(info.Out);
        Assert.Equal("base.vhd", doc.RootElement.GetProperty("backing-filename").GetString());
        Assert.Equal(0, (await Imgtool("check", child)).ExitCode);

        // qemu-img opens the child standalone and agrees on its size.
        using JsonDocument theirs = JsonDocument.Parse((await QemuImg("info", "--output=json", child)).Out);
        Assert.Equal(model.Length, theirs.RootElement.GetProperty("virtual-size").GetInt64());
    }

    /// <summary>qemu-img 7.2 sizes an Azure-made VHD (creator "wa\0\0") by CHS and truncates it; we report current_size.</summary>
    [Fact]
    public async Task An_azure_creator_vhd_reports_its_exact_size()
    {
        string path = _dir.File("azure.vhd");
        await Ok(QemuImg("create", "-f", "vpc", "-o", "subformat=fixed,force_size=on", path, "30M"));
        byte[] bytes = await File.ReadAllBytesAsync(path);
        Span<byte> footer = bytes.AsSpan(bytes.Length - 512);
        "wa\0\0"u8.CopyTo(footer[28..]);
        BinaryPrimitives.WriteUInt16BigEndian(footer[56..], 903); // the spec's CHS geometry for 30 MiB: 903 x 4 x 17, 36 sectors short
        footer[58] = 4;
        footer[59] = 17;
        BinaryPrimitives.WriteUInt32BigEndian(footer[64..], 0);
        uint sum = 0;
        foreach (byte b in footer)
        {
            sum += b;
        }

        BinaryPrimitives.WriteUInt32BigEndian(footer[64..], ~sum);
        await File.WriteAllBytesAsync(path, bytes);

        using JsonDocument ours = JsonDocument.Parse((await Imgtool("info", "--output=json", path)).Out);
        Assert.Equal("vpc", ours.RootElement.GetProperty("format").GetString());
        Assert.Equal(30 * MiB, ours.RootElement.GetProperty("virtual-size").GetInt64());
        using JsonDocument theirs = JsonDocument.Parse((await QemuImg("info", "-f", "vpc", "--output=json", path)).Out);
        Assert.Equal(903L * 4 * 17 * 512, theirs.RootElement.GetProperty("virtual-size").GetInt64());
        using JsonDocument probed = JsonDocument.Parse((await QemuImg("info", "--output=json", path)).Out);
        Assert.Equal("raw", probed.RootElement.GetProperty("format").GetString());
    }

    [Fact]
    public async Task A_fixed_vhd_is_probed_as_vpc_with_its_exact_size()
    {
        string path = _dir.File("fixed.vhd");
        await Ok(Imgtool("create", "-f", "vpc", "-o", "subformat=fixed,force_size=on", path, "7M"));
        using JsonDocument ours = JsonDocument.Parse((await Imgtool("info", "--output=json", path)).Out);
        Assert.Equal("vpc", ours.RootElement.GetProperty("format").GetString());
        Assert.Equal(7 * MiB, ours.RootElement.GetProperty("virtual-size").GetInt64());
        using JsonDocument theirs = JsonDocument.Parse((await QemuImg("info", "--output=json", path)).Out);
        Assert.Equal(7 * MiB + 512, theirs.RootElement.GetProperty("virtual-size").GetInt64());
    }

    [Fact]
    public async Task Create_option_help_lists_qemus_vpc_options()
    {
        RunResult help = await Imgtool("create", "-f", "vpc", "-o", "help");
        Assert.Contains("force_size=<bool (on/off)>", help.Out, StringComparison.Ordinal);
        Assert.Contains("subformat=<str>", help.Out, StringComparison.Ordinal);
        RunResult bad = await Imgtool("create", "-f", "vpc", "-o", "subformat=sparse", _dir.File("x.vhd"), "1M");
        Assert.NotEqual(0, bad.ExitCode);
    }

    private static long CeilingChs(string options, long size)
    {
        _ = options;
        long sectors = size / 512;
        for (long extra = 0; ; extra++)
        {
            long s = sectors + extra;
            long spt = 17;
            long cth = s / spt;
            long heads = Math.Max(4, (cth + 1023) / 1024);
            if (cth >= heads * 1024 || heads > 16)
            {
                spt = 31;
                heads = 16;
                cth = s / spt;
            }

            if (cth >= heads * 1024)
            {
                spt = 63;
                heads = 16;
                cth = s / spt;
            }

            long chs = cth / heads * heads * spt;
            if (chs >= sectors)
            {
                return chs * 512;
            }
        }
    }

    private static async Task WritePattern(string path)
    {
        foreach (string command in new[] { "write -P 0xab 1M 64k", "write -P 0x11 7340032 4k", "write -P 0x5a 20M 512", "write -z 1088k 4k" })
        {
            RunResult r = await Qemu("qemu-io", "-f", "vpc", "-c", command, path);
            Assert.True(r.ExitCode == 0 && !r.Out.Contains("error", StringComparison.OrdinalIgnoreCase), r.ToString());
        }
    }

    private static async Task Ok(Task<RunResult> run)
    {
        RunResult r = await run;
        Assert.True(r.ExitCode == 0, r.ToString());
    }
}

using System.Text.Json;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>VMDK images checked against the real qemu-img 7.2 and qemu-io in both directions, for every subformat.</summary>
public sealed class VmdkInteropTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, bool> Variants => new()
    {
        { "monolithicSparse", false },
        { "monolithicFlat", false },
        { "twoGbMaxExtentSparse", false },
        { "twoGbMaxExtentFlat", false },
        { "streamOptimized", false },
        { "streamOptimized", true },
    };

    /// <summary>What we write: every qemu-img variant plus vmfs datastore descriptors, which qemu-img reads but cannot make.</summary>
    public static TheoryData<string, bool> OurVariants
    {
        get
        {
            TheoryData<string, bool> variants = Variants;
            variants.Add("vmfs", false);
            return variants;
        }
    }

    [Theory]
    [MemberData(nameof(OurVariants))]
    public async Task Qemu_img_checks_and_reads_what_we_convert(string subformat, bool compress)
    {
        byte[] model = Source(out string source, (5 * MiB) + 1000); // not a whole number of sectors or grains
        string target = _dir.File("ours.vmdk");
        string[] args = compress
            ? ["convert", "-c", "-O", "vmdk", "-o", $"subformat={subformat}", source, target]
            : ["convert", "-O", "vmdk", "-o", $"subformat={subformat}", source, target];
        RunResult convert = await Imgtool(args);
        Assert.True(convert.ExitCode == 0, convert.ToString());

        RunResult check = await QemuImg("check", target);
        Assert.True(check.ExitCode == 0, check.ToString());
        RunResult compare = await QemuImg("compare", "-f", "raw", "-F", "vmdk", source, target);
        Assert.True(compare.ExitCode == 0, compare.ToString());

        string back = _dir.File("back.raw");
        Assert.Equal(0, (await QemuImg("convert", "-O", "raw", target, back)).ExitCode);
        Assert.Equal(model, (await File.ReadAllBytesAsync(back))[..model.Length]);
        await InfoAgrees(target);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task We_read_what_qemu_img_wrote(string subformat, bool compress)
    {
        byte[] model = Source(out string source, (5 * MiB) + 1000);
        string target = _dir.File("theirs.vmdk");
        string[] args = compress
            ? ["convert", "-c", "-O", "vmdk", "-o", $"subformat={subformat}", source, target]
            : ["convert", "-O", "vmdk", "-o", $"subformat={subformat}", source, target];
        Assert.Equal(0, (await QemuImg(args)).ExitCode);

        string back = _dir.File("back.raw");
        RunResult convert = await Imgtool("convert", "-O", "raw", target, back);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(model, (await File.ReadAllBytesAsync(back))[..model.Length]);
        Assert.Equal(0, (await Imgtool("compare", source, target)).ExitCode);
        Assert.Equal(0, (await Imgtool("check", target)).ExitCode);
        await InfoAgrees(target);
    }

    [Fact]
    public async Task Zeroed_grains_written_by_qemu_io_read_the_same_in_both()
    {
        string image = _dir.File("zg.vmdk");
        Assert.Equal(0, (await Imgtool("create", "-f", "vmdk", "-o", "zeroed_grain=on", image, "16M")).ExitCode);
        RunResult io = await Qemu("qemu-io", "-c", "write -P 0x5a 0 4M", "-c", "write -z 1M 1M", "-c", "write -P 0x11 3M 1000", image);
        Assert.True(io.ExitCode == 0, io.ToString());
        Assert.Equal(0, (await QemuImg("check", image)).ExitCode);
        await SameContent(image);

        RunResult map = await Imgtool("map", "--output=json", image);
        Assert.Contains("\"zero\": true, \"data\": false", map.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Delta_disks_chain_both_ways()
    {
        string baseImage = _dir.File("base.vmdk");
        Assert.Equal(0, (await QemuImg("create", "-f", "vmdk", baseImage, "8M")).ExitCode);
        Assert.Equal(0, (await Qemu("qemu-io", "-c", "write -P 0x77 0 8M", baseImage)).ExitCode);

        // Ours over theirs: qemu-io writes into our delta, both read the same.
        string ours = _dir.File("ours.vmdk");
        RunResult create = await Imgtool("create", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", ours);
        Assert.True(create.ExitCode == 0, create.ToString());
        Assert.Equal(0, (await Qemu("qemu-io", "-c", "write -P 0x33 100k 5000", ours)).ExitCode);
        Assert.Equal(0, (await QemuImg("check", ours)).ExitCode);
        await SameContent(ours);
        await InfoAgrees(ours);

        // Theirs over ours.
        string theirs = _dir.File("theirs.vmdk");
        Assert.Equal(0, (await QemuImg("create", "-f", "vmdk", "-b", "ours.vmdk", "-F", "vmdk", theirs)).ExitCode);
        Assert.Equal(0, (await Qemu("qemu-io", "-c", "write -P 0x44 7M 100k", theirs)).ExitCode);
        await SameContent(theirs);
        RunResult chain = await Imgtool("info", "--backing-chain", "--output=json", theirs);
        Assert.True(chain.ExitCode == 0, chain.ToString());
    }

    [Theory]
    [InlineData("monolithicSparse", "adapter_type=lsilogic,hwversion=13,toolsversion=10346")]
    [InlineData("streamOptimized", "adapter_type=buslogic,compat6=on")]
    [InlineData("monolithicFlat", "adapter_type=legacyESX")]
    [InlineData("twoGbMaxExtentFlat", "adapter_type=ide")]
    public async Task Create_options_give_the_descriptor_qemu_img_writes(string subformat, string options)
    {
        string ours = _dir.File("ours.vmdk");
        string theirs = _dir.File("theirs.vmdk");
        Assert.Equal(0, (await Imgtool("create", "-f", "vmdk", "-o", $"subformat={subformat},{options}", ours, "3G")).ExitCode);
        Assert.Equal(0, (await QemuImg("create", "-f", "vmdk", "-o", $"subformat={subformat},{options}", theirs, "3G")).ExitCode);
        Assert.Equal(Ddb(await DescriptorOf(theirs)), Ddb(await DescriptorOf(ours)));
        Assert.Equal(0, (await QemuImg("check", ours)).ExitCode);
        await InfoAgrees(ours);
    }

    /// <summary>Sparse variants map exactly as qemu-img maps them, extent files named. (Flat extents differ on
    /// purpose: holes there are "zero" without "data", so convert skips them; qemu-img says both.)</summary>
    [Theory]
    [InlineData("monolithicSparse")]
    [InlineData("twoGbMaxExtentSparse")]
    public async Task Map_is_the_same_as_qemu_img_map(string subformat)
    {
        Source(out string source, 5 * MiB);
        string image = _dir.File("m.vmdk");
        Assert.Equal(0, (await QemuImg("convert", "-O", "vmdk", "-o", $"subformat={subformat}", source, image)).ExitCode);
        foreach (string output in new[] { "json", "human" })
        {
            RunResult theirs = await QemuImg("map", "--output", output, image);
            RunResult ours = await Imgtool("map", "--output", output, image);
            Assert.Equal(theirs.Out, ours.Out);
        }
    }

    [Fact]
    public async Task Compression_with_a_subformat_that_cannot_store_it_is_an_error()
    {
        Source(out string source, 5 * MiB);
        RunResult result = await Imgtool("convert", "-c", "-O", "vmdk", source, _dir.File("x.vmdk"));
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("compression", result.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.File("x.vmdk")));
    }

    /// <summary>imgtool info shows every field qemu-img info shows, with the same values (actual-size summed over extent files too).</summary>
    private static async Task InfoAgrees(string image)
    {
        using JsonDocument theirs = JsonDocument.Parse((await QemuImg("info", "--output=json", image)).Out);
        RunResult ours = await Imgtool("info", "--output=json", image);
        Assert.True(ours.ExitCode == 0, ours.ToString());
        using JsonDocument mine = JsonDocument.Parse(ours.Out);
        foreach (JsonProperty field in theirs.RootElement.EnumerateObject())
        {
            Assert.True(mine.RootElement.TryGetProperty(field.Name, out JsonElement value), $"missing field {field.Name}");
            Assert.Equal(field.Value.ToString(), value.ToString());
        }
    }

    /// <summary>imgtool and qemu-img convert the image to the same raw bytes.</summary>
    private async Task SameContent(string image)
    {
        string theirs = _dir.File("same-theirs.raw");
        string ours = _dir.File("same-ours.raw");
        Assert.Equal(0, (await QemuImg("convert", "-O", "raw", image, theirs)).ExitCode);
        RunResult convert = await Imgtool("convert", "-O", "raw", image, ours);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(await File.ReadAllBytesAsync(theirs), await File.ReadAllBytesAsync(ours));
        File.Delete(theirs);
        File.Delete(ours);
    }

    private static async Task<string> DescriptorOf(string path)
    {
        byte[] bytes = await File.ReadAllBytesAsync(path);
        bool sparse = bytes.Length >= 4 && bytes[0] == 'K' && bytes[1] == 'D' && bytes[2] == 'M' && bytes[3] == 'V';
        return System.Text.Encoding.ASCII.GetString(sparse ? bytes.AsSpan(512, 20 * 512) : bytes).TrimEnd('\0');
    }

    private static string[] Ddb(string descriptor) =>
        [.. descriptor.Split('\n').Where(l => l.StartsWith("ddb.", StringComparison.Ordinal) || l.StartsWith("createType", StringComparison.Ordinal) || l.StartsWith("version", StringComparison.Ordinal))];

    private byte[] Source(out string path, long size)
    {
        path = _dir.File("source.raw");
        return SparseFile(path, size, (0, 100_000), (2 * MiB, 3 * MiB / 2), (size - 700, 700));
    }
}

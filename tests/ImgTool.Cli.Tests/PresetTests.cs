using System.Text.Json;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests;

/// <summary>--preset for the platforms users convert for: format, options and size rules applied, and checked by info.</summary>
public sealed class PresetTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Azure_makes_a_fixed_vhd_rounded_to_a_whole_MiB_that_qemu_img_reads()
    {
        string source = _dir.File("odd.raw");
        byte[] model = SparseFile(source, (3 * MiB) - 4096 + 512, (0, 100_000), ((2 * MiB) + 4096, 8192));
        string target = _dir.File("azure.vhd");
        RunResult convert = await Imgtool("convert", "--preset", "azure", source, target);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal($"Preset azure: wrote vpc image '{target}', virtual size {3 * MiB} bytes (rounded up from {model.Length})\n", convert.Out);

        // A fixed VHD is the data followed by a 512-byte footer; qemu-img needs -f vpc to see it (it probes it as raw).
        Assert.Equal(3 * MiB + 512, new FileInfo(target).Length);
        using JsonDocument theirs = JsonDocument.Parse((await QemuImg("info", "-f", "vpc", "--output=json", target)).Out);
        Assert.Equal(3 * MiB, theirs.RootElement.GetProperty("virtual-size").GetInt64());
        Assert.Equal(0, (await QemuImg("compare", "-f", "raw", "-F", "vpc", source, target)).ExitCode);

        RunResult info = await Imgtool("info", "--preset", "azure", "--output", "json", target);
        using JsonDocument ours = JsonDocument.Parse(info.Out);
        Assert.True(ours.RootElement.GetProperty("preset").GetProperty("accepted").GetBoolean(), info.ToString());
    }

    [Fact]
    public async Task Info_warns_about_what_a_platform_would_refuse()
    {
        string dynamic = _dir.File("dynamic.vhd");
        Assert.Equal(0, (await QemuImg("create", "-f", "vpc", "-o", "subformat=dynamic", dynamic, "10M")).ExitCode);
        RunResult info = await Imgtool("info", "--preset", "azure", dynamic);
        Assert.Equal(0, info.ExitCode);
        Assert.Contains("Azure does not take 'dynamic' images", info.Err, StringComparison.Ordinal);
        Assert.Contains("multiple of 1048576 bytes", info.Err, StringComparison.Ordinal); // CHS rounding made it 10 MiB - x

        string raw = _dir.File("disk.raw");
        SparseFile(raw, MiB);
        RunResult wrongFormat = await Imgtool("info", "--preset", "esxi", raw);
        Assert.Equal($"imgtool: warning: {raw}: ESXi (upload / OVA) needs format 'vmdk', this image is 'raw'\n", wrongFormat.Err);
    }

    [Fact]
    public async Task Esxi_makes_a_stream_optimized_lsilogic_vmdk()
    {
        string source = _dir.File("src.raw");
        SparseFile(source, 4 * MiB, (MiB, 200_000));
        string target = _dir.File("esxi.vmdk");
        Assert.Equal(0, (await Imgtool("convert", "--preset", "esxi", source, target)).ExitCode);
        using JsonDocument info = JsonDocument.Parse((await QemuImg("info", "--output=json", target)).Out);
        Assert.Equal("streamOptimized", info.RootElement.GetProperty("format-specific").GetProperty("data").GetProperty("create-type").GetString());
        Assert.Equal(0, (await QemuImg("compare", source, target)).ExitCode);
        RunResult check = await Imgtool("info", "--preset", "esxi", target);
        Assert.Equal(string.Empty, check.Err);
    }

    [Fact]
    public async Task Hyperv_makes_a_dynamic_vhdx_and_create_reports_the_rounding()
    {
        string target = _dir.File("hv.vhdx");
        RunResult create = await Imgtool("create", "--preset", "hyperv", target, "1000000");
        Assert.True(create.ExitCode == 0, create.ToString());
        Assert.EndsWith("Preset hyperv: virtual size rounded up from 1000000 to 1048576 bytes\n", create.Out, StringComparison.Ordinal);
        using JsonDocument info = JsonDocument.Parse((await QemuImg("info", "--output=json", target)).Out);
        Assert.Equal(MiB, info.RootElement.GetProperty("virtual-size").GetInt64());
        Assert.Equal("vhdx", info.RootElement.GetProperty("format").GetString());
    }

    [Fact]
    public async Task A_preset_refuses_contradicting_flags_and_unknown_names()
    {
        string source = _dir.File("src.raw");
        SparseFile(source, MiB);
        RunResult format = await Imgtool("convert", "--preset", "azure", "-O", "vmdk", source, _dir.File("a.vmdk"));
        Assert.Equal((1, "imgtool: --preset azure writes format 'vpc', not 'vmdk'\n"), (format.ExitCode, format.Err));
        RunResult option = await Imgtool("convert", "--preset", "azure", "-o", "subformat=dynamic", source, _dir.File("b.vhd"));
        Assert.Equal((1, "imgtool: -o subformat=dynamic contradicts --preset azure, which needs subformat=fixed\n"), (option.ExitCode, option.Err));
        RunResult unknown = await Imgtool("create", "--preset", "gcp", _dir.File("c.img"), "1M");
        Assert.Equal((1, "imgtool: unknown preset 'gcp' (known: azure, hyperv, esxi, esxi-flat)\n"), (unknown.ExitCode, unknown.Err));
        Assert.Equal([source], Directory.GetFiles(_dir.Path));
    }
}

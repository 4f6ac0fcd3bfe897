using System.Text.Json;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>VHDX images checked against the real qemu-img in both directions.</summary>
public sealed class VhdxInteropTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> QemuVariants =>
    [
        "subformat=dynamic,block_size=1M",
        "subformat=dynamic,block_size=32M,log_size=4M",
        "subformat=dynamic,block_state_zero=off",
        "subformat=fixed,block_size=1M",
        "subformat=fixed,block_size=32M,log_size=8M",
    ];

    public static TheoryData<string> OurVariants =>
    [
        "block_size=1M",
        "block_size=32M",
        "block_size=1M,log_size=4M",
        "block_state_zero=off",
        "subformat=fixed,block_size=1M",
        "subformat=fixed,block_size=32M,log_size=2M",
        "",
    ];

    [Theory]
    [MemberData(nameof(QemuVariants))]
    public async Task We_read_what_qemu_img_wrote(string options)
    {
        string image = _dir.File("qemu.vhdx");
        Ok(await QemuImg("create", "-f", "vhdx", "-o", options, image, "70M"));
        foreach (string command in new[] { "write -P 0xab 1M 64k", "write -P 0x11 33M 3M", "write -P 0x5a 69M 1M", "write -z 34M 64k" })
        {
            Ok(await Qemu("qemu-io", "-f", "vhdx", "-c", command, image));
        }

        string theirs = _dir.File("theirs.raw");
        string ours = _dir.File("ours.raw");
        Ok(await QemuImg("convert", "-O", "raw", image, theirs));
        Ok(await Imgtool("convert", "-O", "raw", image, ours));
        Assert.Equal(await File.ReadAllBytesAsync(theirs), await File.ReadAllBytesAsync(ours));
        Ok(await Imgtool("compare", image, theirs));

        using JsonDocument qemuInfo = JsonDocument.Parse((await QemuImg("info", "--output=json", image)).Out);
        using JsonDocument ourInfo = JsonDocument.Parse(Ok(await Imgtool("info", "--output=json", image)).Out);
        foreach (JsonProperty field in qemuInfo.RootElement.EnumerateObject())
        {
            Assert.True(ourInfo.RootElement.TryGetProperty(field.Name, out JsonElement value), $"missing field {field.Name}");
            Assert.Equal(field.Value.ToString(), value.ToString());
        }

        RunResult check = await Imgtool("check", image);
        Assert.Equal((await QemuImg("check", image)).Out, check.Out);
        Assert.Equal(0, check.ExitCode);
    }

    [Theory]
    [MemberData(nameof(OurVariants))]
    public async Task Qemu_img_reads_and_checks_what_we_write(string options)
    {
        string source = _dir.File("source.raw");
        SparseFile(source, 70 * MiB + 512, (MiB + 100, 70_000), (33 * MiB, 3 * MiB), (70 * MiB - 4096, 4096 + 512));
        string image = _dir.File("ours.vhdx");
        string[] args = options.Length == 0 ? ["convert", "-O", "vhdx", source, image] : ["convert", "-O", "vhdx", "-o", options, source, image];
        Ok(await Imgtool(args));

        Assert.Equal("No errors were found on the image.\n", Ok(await QemuImg("check", image)).Out);
        Ok(await QemuImg("compare", "-f", "vhdx", "-F", "raw", image, source));
        using JsonDocument info = JsonDocument.Parse(Ok(await QemuImg("info", "--output=json", image)).Out);
        Assert.Equal(70 * MiB + 512, info.RootElement.GetProperty("virtual-size").GetInt64());
        string expectedBlock = options.Contains("32M", StringComparison.Ordinal) ? "33554432" : options.Contains("1M", StringComparison.Ordinal) ? "1048576" : "8388608";
        Assert.Equal(expectedBlock, info.RootElement.GetProperty("cluster-size").ToString());

        // qemu-io writes into our image; we read what it wrote.
        Ok(await Qemu("qemu-io", "-f", "vhdx", "-c", "write -P 0x42 50M 1M", image));
        Ok(await Qemu("qemu-io", "-f", "raw", "-c", "write -P 0x42 50M 1M", source));
        Ok(await Imgtool("compare", image, source));
        Assert.Equal(0, (await QemuImg("check", image)).ExitCode);
    }

    [Fact]
    public async Task Map_reports_only_written_data_as_data()
    {
        string image = _dir.File("map.vhdx");
        Ok(await QemuImg("create", "-f", "vhdx", "-o", "block_size=1M", image, "16M"));
        Ok(await Qemu("qemu-io", "-f", "vhdx", "-c", "write -P 1 2M 4k", image));
        using JsonDocument map = JsonDocument.Parse(Ok(await Imgtool("map", "--output=json", image)).Out);
        JsonElement[] data = [.. map.RootElement.EnumerateArray().Where(e => e.GetProperty("data").GetBoolean())];
        Assert.Single(data);
        Assert.Equal(2 * MiB, data[0].GetProperty("start").GetInt64());
        // qemu allocated a whole 1 MiB block but wrote one page of it; the rest is a hole in the file.
        Assert.Equal(4096, data[0].GetProperty("length").GetInt64());
    }

    [Fact]
    public async Task A_differencing_chain_reads_with_its_parent_and_takes_writes()
    {
        string parentRaw = _dir.File("parent.raw");
        SparseFile(parentRaw, 16 * MiB, (0, 3 * MiB), (9 * MiB, 100_000));
        string parent = _dir.File("parent.vhdx");
        Ok(await QemuImg("convert", "-O", "vhdx", "-o", "block_size=1M", parentRaw, parent));

        string child = _dir.File("child.vhdx");
        Ok(await Imgtool("create", "-f", "vhdx", "-o", "block_size=1M", "-b", "parent.vhdx", "-F", "vhdx", child));
        Ok(await Imgtool("compare", child, parentRaw));
        using (JsonDocument info = JsonDocument.Parse(Ok(await Imgtool("info", "--output=json", child)).Out))
        {
            Assert.Equal("parent.vhdx", info.RootElement.GetProperty("backing-filename").GetString());
        }

        // Write a changed copy into the child: it must read as that copy, the parent unchanged.
        string changed = _dir.File("changed.raw");
        File.Copy(parentRaw, changed);
        Ok(await Qemu("qemu-io", "-f", "raw", "-c", "write -P 0x33 2M 8k", "-c", "write -P 0x44 12M 1M", changed));
        Ok(await Imgtool("convert", "-n", "-O", "vhdx", changed, child));
        Ok(await Imgtool("compare", child, changed));
        Ok(await QemuImg("compare", parent, parentRaw));

        string flat = _dir.File("flat.raw");
        Ok(await Imgtool("convert", "-O", "raw", child, flat));
        Assert.Equal(await File.ReadAllBytesAsync(changed), await File.ReadAllBytesAsync(flat));
    }

    [Fact]
    public async Task A_damaged_image_gives_one_clear_line()
    {
        string image = _dir.File("broken.vhdx");
        Ok(await QemuImg("create", "-f", "vhdx", image, "16M"));
        byte[] bytes = await File.ReadAllBytesAsync(image);
        bytes[(64 * 1024) + 30] ^= 0xff;
        bytes[(128 * 1024) + 30] ^= 0xff;
        await File.WriteAllBytesAsync(image, bytes);
        RunResult result = await Imgtool("info", image);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("both headers are damaged", result.Err, StringComparison.Ordinal);
        Assert.Single(result.Err.Trim().Split('\n'));
    }

    private static RunResult Ok(RunResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }
}

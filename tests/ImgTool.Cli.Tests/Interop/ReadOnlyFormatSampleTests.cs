using System.Text.Json;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// The real-world samples QEMU's test suite keeps for the formats imgtool reads but does not write (bochs, cloop,
/// dmg, parallels; fixtures/samples/README.md says where each comes from): info, the bytes of a raw conversion and
/// map agree with the real qemu-img, and so does check: qemu-img checks parallels images (without repair here, the
/// format being read-only), and for the others both say the format does not support checks (exit 63).
/// </summary>
public sealed class ReadOnlyFormatSampleTests(QemuSampleImages samples) : IClassFixture<QemuSampleImages>, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Sample file and what QEMU's tests say of it.</summary>
    public static TheoryData<string, string> Samples => new()
    {
        { "empty.bochs", "an empty Bochs growing image (QEMU test 078)" },
        { "simple-pattern.cloop", "a cloop V2.0 image with a simple pattern (QEMU test 075)" },
        { "simple-dmg.dmg", "a UDIF image with zlib, zero and ignore chunks in an XML plist (QEMU test dmg)" },
        { "parallels-v1", "a Parallels 'WithoutFreeSpace' image (QEMU test 076)" },
        { "parallels-v2", "a Parallels 'WithouFreSpacExt' image (QEMU test 076)" },
        { "parallels-with-bitmap", "a 64 GiB Parallels image made by prlctl/ploop with a dirty bitmap (QEMU test parallels-read-bitmap)" },
    };

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task Info_agrees_with_qemu_img(string sample, string madeBy)
    {
        string image = await samples.ExtractAsync(sample, _dir.Path);
        using JsonDocument theirs = JsonDocument.Parse(Ok(await QemuImg("info", "--output=json", image)).Out);
        using JsonDocument ours = JsonDocument.Parse(Ok(await Imgtool("info", "--output=json", image)).Out);
        Assert.True(theirs.RootElement.ToString() == ours.RootElement.ToString(), $"{sample} ({madeBy})\nqemu-img:\n{theirs.RootElement}\nimgtool:\n{ours.RootElement}");
        Assert.Equal(Ok(await QemuImg("info", image)).Out, Ok(await Imgtool("info", image)).Out);
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task Converted_to_raw_it_has_qemu_img_bytes(string sample, string madeBy)
    {
        string image = await samples.ExtractAsync(sample, _dir.Path);
        string theirs = _dir.File("theirs.raw");
        string ours = _dir.File("ours.raw");
        Ok(await QemuImg("convert", "-O", "raw", image, theirs));
        Ok(await Imgtool("convert", "-O", "raw", image, ours));
        Assert.Equal(new FileInfo(theirs).Length, new FileInfo(ours).Length);
        RunResult compare = await QemuImg("compare", "-f", "raw", "-F", "raw", theirs, ours);
        Assert.True(compare.ExitCode == 0, $"{sample} ({madeBy}): {compare}");
        Ok(await Imgtool("compare", "-F", "raw", image, theirs));
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public async Task Map_agrees_with_qemu_img(string sample, string madeBy)
    {
        string image = await samples.ExtractAsync(sample, _dir.Path);
        RunResult theirs = Ok(await QemuImg("map", "--output=json", image));
        RunResult ours = Ok(await Imgtool("map", "--output=json", image));
        Assert.True(theirs.Out == ours.Out, $"{sample} ({madeBy})\nqemu-img:\n{theirs.Out}\nimgtool:\n{ours.Out}");
    }

    [Theory]
    [InlineData("parallels-v1", 0)]
    [InlineData("parallels-v2", 0)]
    [InlineData("parallels-with-bitmap", 3)]
    [InlineData("empty.bochs", 63)]
    [InlineData("simple-pattern.cloop", 63)]
    [InlineData("simple-dmg.dmg", 63)]
    public async Task Check_agrees_with_qemu_img(string sample, int exitCode)
    {
        string image = await samples.ExtractAsync(sample, _dir.Path);
        RunResult theirs = await QemuImg("check", "--output=json", image);
        RunResult ours = await Imgtool("check", "--output=json", image);
        Assert.Equal(exitCode, theirs.ExitCode);
        Assert.True(ours.ExitCode == exitCode, ours.ToString());
        if (exitCode == 63)
        {
            return;
        }

        // The ploop-made sample: its bitmap and extension clusters lie past the last BAT cluster, which QEMU counts
        // as 2 leaked clusters. Every field qemu-img reports is ours too (we add the findings).
        using JsonDocument their = JsonDocument.Parse(theirs.Out);
        using JsonDocument our = JsonDocument.Parse(ours.Out);
        foreach (JsonProperty field in their.RootElement.EnumerateObject().Where(f => f.Name != "filename"))
        {
            Assert.True(our.RootElement.TryGetProperty(field.Name, out JsonElement value), $"missing {field.Name}: {ours.Out}");
            Assert.Equal(field.Value.ToString(), value.ToString());
        }
    }

    /// <summary>QEMU's test 076 reads the same data from both Parallels layouts (BAT in sectors and in clusters).</summary>
    [Fact]
    public async Task The_two_parallels_layouts_hold_the_same_disk()
    {
        string v1 = await samples.ExtractAsync("parallels-v1", _dir.Path);
        string v2 = await samples.ExtractAsync("parallels-v2", _dir.Path);
        Ok(await Imgtool("compare", v1, v2));
    }

    private static RunResult Ok(RunResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }
}

using System.Text.Json;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests;

/// <summary>Raw images checked against the real qemu-img in both directions.</summary>
public sealed class QemuImgInteropTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> Preallocations => ["off", "falloc", "full"];

    [Theory]
    [MemberData(nameof(Preallocations))]
    public async Task Info_agrees_with_qemu_img_on_images_it_made(string preallocation)
    {
        string path = await QemuMadeImage(preallocation);
        using JsonDocument theirs = JsonDocument.Parse((await QemuImg("info", "--output=json", path)).Out);
        RunResult ours = await Imgtool("info", "--output=json", path);
        Assert.Equal(0, ours.ExitCode);
        using JsonDocument mine = JsonDocument.Parse(ours.Out);
        foreach (JsonProperty field in theirs.RootElement.EnumerateObject())
        {
            Assert.True(mine.RootElement.TryGetProperty(field.Name, out JsonElement value), $"missing field {field.Name}");
            Assert.Equal(field.Value.ToString(), value.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(Preallocations))]
    public async Task Map_is_the_same_text_as_qemu_img_map(string preallocation)
    {
        string path = await QemuMadeImage(preallocation);
        foreach (string output in new[] { "json", "human" })
        {
            RunResult theirs = await QemuImg("map", "--output", output, path);
            RunResult ours = await Imgtool("map", "--output", output, path);
            Assert.Equal(theirs.Out, ours.Out);
        }
    }

    [Theory]
    [MemberData(nameof(Preallocations))]
    public async Task We_read_what_qemu_img_wrote(string preallocation)
    {
        string path = await QemuMadeImage(preallocation);
        string copy = _dir.File("copy.raw");
        Assert.Equal(0, (await Imgtool("convert", "-f", "raw", "-O", "raw", path, copy)).ExitCode);
        Assert.Equal(await File.ReadAllBytesAsync(path), await File.ReadAllBytesAsync(copy));
        Assert.Equal(0, (await QemuImg("compare", path, copy)).ExitCode);
        Assert.Equal(0, (await Imgtool("compare", path, copy)).ExitCode);
        Assert.True(Allocated(copy) <= 256 * 1024, $"copy allocates {Allocated(copy)} bytes for 192 KiB of data");
    }

    [Theory]
    [MemberData(nameof(Preallocations))]
    public async Task Qemu_img_reads_what_we_create(string preallocation)
    {
        string ours = _dir.File($"ours-{preallocation}.raw");
        Assert.Equal(0, (await Imgtool("create", "-f", "raw", "-o", $"preallocation={preallocation}", ours, "16M")).ExitCode);
        using JsonDocument info = JsonDocument.Parse((await QemuImg("info", "--output=json", ours)).Out);
        Assert.Equal(16 * MiB, info.RootElement.GetProperty("virtual-size").GetInt64());
        Assert.Equal("raw", info.RootElement.GetProperty("format").GetString());
        Assert.Equal(preallocation == "off" ? 0 : 16 * MiB, info.RootElement.GetProperty("actual-size").GetInt64());

        string theirs = _dir.File($"theirs-{preallocation}.raw");
        Assert.Equal(0, (await QemuImg("create", "-f", "raw", theirs, "16M")).ExitCode);
        Assert.Equal(0, (await QemuImg("compare", "-f", "raw", "-F", "raw", ours, theirs)).ExitCode);
        Assert.Equal(63, (await QemuImg("check", ours)).ExitCode);
    }

    [Fact]
    public async Task Compare_exit_codes_match_qemu_img()
    {
        string a = await QemuMadeImage("off");
        string b = _dir.File("b.raw");
        File.Copy(a, b);
        string c = _dir.File("c.raw");
        File.Copy(a, c);
        Assert.Equal(0, (await Qemu("qemu-io", "-f", "raw", "-c", "write -P 0x01 5000 1", c)).ExitCode);
        string d = _dir.File("d.raw");
        Assert.Equal(0, (await QemuImg("create", "-f", "raw", d, "20M")).ExitCode);

        // Images of different sizes: qemu-img warns about the size only once the common part compared equal.
        string larger = _dir.File("larger.raw");
        File.Copy(a, larger);
        Assert.Equal(0, (await QemuImg("resize", "-f", "raw", larger, "24M")).ExitCode);
        string largerWithTail = _dir.File("tail.raw");
        File.Copy(larger, largerWithTail);
        Assert.Equal(0, (await Qemu("qemu-io", "-f", "raw", "-c", "write -P 0x02 22M 4k", largerWithTail)).ExitCode);
        string largerEmpty = _dir.File("empty24.raw");
        Assert.Equal(0, (await QemuImg("create", "-f", "raw", largerEmpty, "24M")).ExitCode);

        foreach (var (x, y) in new[] { (a, b), (a, c), (a, d), (d, a), (a, larger), (a, largerWithTail), (largerWithTail, a), (a, largerEmpty) })
        {
            RunResult theirs = await QemuImg("compare", x, y);
            RunResult ours = await Imgtool("compare", x, y);
            Assert.Equal(theirs.ExitCode, ours.ExitCode);
            Assert.Equal(theirs.Out, ours.Out);
        }
    }

    [Fact]
    public async Task Snapshot_list_of_a_format_without_snapshots_prints_nothing_like_qemu_img()
    {
        string path = await QemuMadeImage("off");
        RunResult theirs = await QemuImg("snapshot", "-l", path);
        RunResult ours = await Imgtool("snapshot", "-l", path);
        Assert.Equal(0, theirs.ExitCode);
        Assert.True(ours.ExitCode == 0, ours.ToString());
        Assert.Equal(theirs.Out, ours.Out);
        Assert.NotEqual(0, (await Imgtool("snapshot", "-c", "s1", path)).ExitCode);
    }

    /// <summary>The acceptance case: a 1 GiB half-sparse image converts to a sparse, identical raw file.</summary>
    [Fact]
    public async Task A_1GiB_half_sparse_image_converts_to_a_sparse_identical_file()
    {
        string source = _dir.File("half.raw");
        var random = new Random(7);
        byte[] chunk = new byte[MiB];
        await using (var stream = new FileStream(source, FileMode.Create))
        {
            stream.SetLength(1L << 30);
            for (int i = 0; i < 1024; i += 2)
            {
                random.NextBytes(chunk);
                stream.Position = (long)i * MiB;
                await stream.WriteAsync(chunk);
            }
        }

        string target = _dir.File("half-copy.raw");
        Assert.Equal(0, (await Imgtool("convert", "-O", "raw", source, target)).ExitCode);
        Assert.Equal(0, (await QemuImg("compare", source, target)).ExitCode);
        long allocated = Allocated(target);
        Assert.InRange(allocated, 512L * MiB, 520L * MiB);
    }

    /// <summary>A raw image as qemu-img creates it, with data written by qemu-io at three places.</summary>
    private async Task<string> QemuMadeImage(string preallocation)
    {
        string path = _dir.File($"qemu-{preallocation}-{Guid.NewGuid():N}.raw");
        Assert.Equal(0, (await QemuImg("create", "-f", "raw", "-o", $"preallocation={preallocation}", path, "20M")).ExitCode);
        foreach (string command in new[] { "write -P 0xab 1M 64k", "write -P 0x11 7340032 64k", "write -P 0x5a 19M 64k" })
        {
            RunResult r = await Qemu("qemu-io", "-f", "raw", "-c", command, path);
            Assert.True(r.ExitCode == 0, r.ToString());
        }

        return path;
    }
}

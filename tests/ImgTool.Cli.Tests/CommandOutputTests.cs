using System.Text.Json;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests;

/// <summary>Golden output of each command: qemu-img's wording where it has one, our JSON where it has none.</summary>
public sealed class CommandOutputTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Create_prints_the_formatting_line_and_makes_a_sparse_image()
    {
        string path = _dir.File("new.raw");
        RunResult r = await Imgtool("create", "-f", "raw", path, "1G");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal($"Formatting '{path}', fmt=raw size=1073741824\n", r.Out);
        Assert.Equal(1L << 30, new FileInfo(path).Length);
        Assert.Equal(0, Allocated(path));

        RunResult full = await Imgtool("create", "-f", "raw", "-o", "preallocation=full", _dir.File("full.raw"), "1M");
        Assert.Equal($"Formatting '{_dir.File("full.raw")}', fmt=raw size=1048576 preallocation=full\n", full.Out);
        Assert.Equal(MiB, Allocated(_dir.File("full.raw")));

        RunResult quiet = await Imgtool("create", "-q", _dir.File("q.raw"), "1M");
        Assert.Equal(string.Empty, quiet.Out);
    }

    [Fact]
    public async Task Create_option_help_lists_the_typed_options()
    {
        RunResult r = await Imgtool("create", "-f", "raw", "-o", "help");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(
            "Supported options:\n" +
            "  preallocation=<str>    - Preallocation mode (allowed values: off, falloc, full)\n" +
            "  size=<size>            - Virtual disk size\n",
            r.Out);
    }

    [Fact]
    public async Task Info_prints_qemu_img_text_and_json()
    {
        string path = _dir.File("i.raw");
        SparseFile(path, 64 * MiB, (0, 3 * MiB));
        RunResult human = await Imgtool("info", path);
        Assert.Equal($"image: {path}\nfile format: raw\nvirtual size: 64 MiB (67108864 bytes)\ndisk size: 3 MiB\n", human.Out);

        RunResult json = await Imgtool("info", "--output=json", path);
        Assert.Equal(
            "{\n" +
            "    \"virtual-size\": 67108864,\n" +
            $"    \"filename\": \"{path}\",\n" +
            "    \"format\": \"raw\",\n" +
            "    \"actual-size\": 3145728,\n" +
            "    \"dirty-flag\": false\n" +
            "}\n",
            json.Out);

        RunResult chain = await Imgtool("info", "--backing-chain", "--output", "json", path);
        Assert.Equal(JsonValueKind.Array, JsonDocument.Parse(chain.Out).RootElement.ValueKind);
    }

    [Fact]
    public async Task Map_prints_data_extents_in_both_forms()
    {
        string path = _dir.File("m.raw");
        SparseFile(path, 16 * MiB, (MiB, MiB));
        RunResult human = await Imgtool("map", path);
        Assert.Equal(
            "Offset          Length          Mapped to       File\n" +
            $"0x100000        0x100000        0x100000        {path}\n",
            human.Out);

        RunResult json = await Imgtool("map", "--output", "json", path);
        Assert.Equal(
            "[{ \"start\": 0, \"length\": 1048576, \"depth\": 0, \"present\": true, \"zero\": true, \"data\": false, \"offset\": 0},\n" +
            "{ \"start\": 1048576, \"length\": 1048576, \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": 1048576},\n" +
            "{ \"start\": 2097152, \"length\": 14680064, \"depth\": 0, \"present\": true, \"zero\": true, \"data\": false, \"offset\": 2097152}]\n",
            json.Out);
    }

    [Fact]
    public async Task Compare_wording_exit_codes_and_json()
    {
        string a = _dir.File("a.raw");
        string b = _dir.File("b.raw");
        SparseFile(a, 4 * MiB, (0, 4096));
        SparseFile(b, 4 * MiB, (0, 4096));
        RunResult same = await Imgtool("compare", a, b);
        Assert.Equal((0, "Images are identical.\n"), (same.ExitCode, same.Out));

        await using (var stream = new FileStream(b, FileMode.Open))
        {
            stream.Position = 3 * MiB + 700;
            stream.WriteByte(1);
        }

        RunResult different = await Imgtool("compare", a, b);
        Assert.Equal((1, $"Content mismatch at offset {3 * MiB + 512}!\n"), (different.ExitCode, different.Out));

        RunResult json = await Imgtool("compare", "--output", "json", a, b);
        using JsonDocument doc = JsonDocument.Parse(json.Out);
        Assert.False(doc.RootElement.GetProperty("identical").GetBoolean());
        Assert.Equal(3 * MiB + 700, doc.RootElement.GetProperty("byte-offset").GetInt64());

        RunResult missing = await Imgtool("compare", a, _dir.File("nope"));
        Assert.Equal(2, missing.ExitCode);

        SparseFile(_dir.File("c.raw"), 5 * MiB, (0, 4096));
        RunResult sizes = await Imgtool("compare", a, _dir.File("c.raw"));
        Assert.Equal((0, "Warning: Image size mismatch!\nImages are identical.\n"), (sizes.ExitCode, sizes.Out));
        RunResult strict = await Imgtool("compare", "-s", a, _dir.File("c.raw"));
        Assert.Equal((1, "Strict mode: Image size mismatch!\n"), (strict.ExitCode, strict.Out));
    }

    [Fact]
    public async Task Check_on_raw_is_unsupported_with_exit_63()
    {
        string path = _dir.File("c.raw");
        SparseFile(path, MiB);
        RunResult r = await Imgtool("check", path);
        Assert.Equal(63, r.ExitCode);
        Assert.Equal("imgtool: This image format does not support checks\n", r.Err);
    }

    [Fact]
    public async Task Convert_reports_as_json_and_streams_json_progress_on_stderr()
    {
        string source = _dir.File("s.raw");
        SparseFile(source, 8 * MiB, (0, 4 * MiB));
        string target = _dir.File("t.raw");
        RunResult r = await Imgtool("convert", "--progress=json", "--output", "json", "-O", "raw", source, target);
        Assert.Equal(0, r.ExitCode);
        using JsonDocument report = JsonDocument.Parse(r.Out);
        Assert.Equal(8 * MiB, report.RootElement.GetProperty("virtual-size").GetInt64());
        Assert.Equal(4 * MiB, report.RootElement.GetProperty("bytes-written").GetInt64());

        string[] lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 2, r.ToString());
        foreach (string line in lines)
        {
            using JsonDocument progress = JsonDocument.Parse(line);
            Assert.Equal("convert", progress.RootElement.GetProperty("phase").GetString());
            Assert.Equal(8 * MiB, progress.RootElement.GetProperty("total").GetInt64());
        }

        using JsonDocument last = JsonDocument.Parse(lines[^1]);
        Assert.Equal(8 * MiB, last.RootElement.GetProperty("done").GetInt64());

        RunResult human = await Imgtool("convert", "-p", source, _dir.File("t2.raw"));
        Assert.EndsWith("    (100.00/100%)\n", human.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Version_and_help()
    {
        RunResult version = await Imgtool("--version");
        Assert.Matches(@"^imgtool version \d+\.\d+\.\d+\n$", version.Out);
        RunResult help = await Imgtool("--help");
        Assert.Equal(0, help.ExitCode);
        foreach (string command in new[] { "create", "info", "convert", "compare", "map", "check" })
        {
            Assert.Contains(command, help.Out, StringComparison.Ordinal);
        }
    }
}

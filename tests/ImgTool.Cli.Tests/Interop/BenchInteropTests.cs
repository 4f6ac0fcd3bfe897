using System.Text.Json;
using System.Text.RegularExpressions;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>`imgtool bench` against the real `qemu-img bench`: the same lines of output, and for write runs the same
/// image afterwards (so the same requests at the same offsets, wrap-around included), checked by `qemu-img compare`
/// and against a byte model of QEMU's offset sequence.</summary>
public sealed partial class BenchInteropTests : IDisposable
{
    private const int Size = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string, string> WriteRuns => new()
    {
        { "raw", "-c 100" },
        { "raw", "-c 500 -s 4k -S 12k -o 8k --pattern 7" },
        { "qcow2", "-c 300 -s 64k -d 3 --pattern 0x2a" },
        { "qcow2", "-c 1000 -s 1k -S 5k -o 3k -d 4 --pattern 0310 --flush-interval 7" },
        { "qcow2", "-c 50 -s 1M --pattern 9" },
        { "qcow2", "-c 64 -d 1 -s 512 -S 65536 --pattern 1 --flush-interval 5 --no-drain -t unsafe" },
        { "vmdk", "-c 200 -s 8k -S 24k --pattern 3 -t writethrough" },
        { "vhdx", "-c 200 -s 4k -S 96k --pattern 4 -t none" },
        { "qed", "-c 100 -s 32k -S 96k --pattern 5" },
    };

    [Theory]
    [MemberData(nameof(WriteRuns))]
    public async Task A_write_run_prints_qemus_lines_and_leaves_the_image_qemu_leaves(string format, string options)
    {
        string ours = _dir.File("ours." + format);
        string theirs = _dir.File("theirs." + format);
        await Ok(QemuImg("create", "-f", format, theirs, Size.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        File.Copy(theirs, ours);
        string[] args = ["bench", "-f", format, "-w", .. options.Split(' ')];
        RunResult qemu = await QemuImg([.. args, theirs]);
        RunResult us = await Imgtool([.. args, ours]);
        Assert.True(qemu.ExitCode == 0, qemu.ToString());
        Assert.True(us.ExitCode == 0, us.ToString());
        Assert.Equal(WithoutTime(qemu.Out), WithoutTime(us.Out));
        Assert.Matches(CompletedLine(), us.Out.Split('\n')[^2]);

        RunResult compare = await QemuImg("compare", "-f", format, "-F", format, ours, theirs);
        Assert.True(compare.ExitCode == 0, compare.ToString());
        if (format != "raw")
        {
            Assert.Equal(0, (await QemuImg("check", "-f", format, ours)).ExitCode);
        }

        // The model: QEMU's offsets (the first as given, then + step modulo size - buffer), each request the pattern.
        string raw = _dir.File("ours.raw-copy");
        await Ok(QemuImg("convert", "-f", format, "-O", "raw", ours, raw));
        Assert.Equal(Model(options), await File.ReadAllBytesAsync(raw));
    }

    [Theory]
    [InlineData("raw", "-c 2000")]
    [InlineData("qcow2", "-c 2000 -s 4k -S 64k -d 0x8 -t none")]
    [InlineData("vmdk", "-c 100 -o 7 -s 3000")]
    [InlineData("vpc", "-c 100 -s 16k")]
    public async Task A_read_run_prints_qemus_lines_and_changes_nothing(string format, string options)
    {
        string image = _dir.File("image." + format);
        await Ok(QemuImg("create", "-f", format, image, "4M"));
        await Ok(Qemu("qemu-io", "-f", format, "-c", "write -P 0x5a 0 1M", image));
        byte[] before = await File.ReadAllBytesAsync(image);
        string[] args = ["bench", "-f", format, .. options.Split(' '), image];
        RunResult qemu = await QemuImg(args);
        RunResult us = await Imgtool(args);
        Assert.True(qemu.ExitCode == 0 && us.ExitCode == 0, qemu + "\n" + us);
        Assert.Equal(WithoutTime(qemu.Out), WithoutTime(us.Out));
        Assert.Equal(before, await File.ReadAllBytesAsync(image));
    }

    [Fact]
    public async Task Json_and_quiet_output()
    {
        string image = _dir.File("image.qcow2");
        await Ok(QemuImg("create", "-f", "qcow2", image, "1M"));
        RunResult json = await Imgtool("bench", "--output", "json", "-w", "-c", "100", "-s", "8k", "--flush-interval", "30", "-d", "16", image);
        Assert.True(json.ExitCode == 0, json.ToString());
        JsonElement root = JsonDocument.Parse(json.Out).RootElement;
        Assert.Equal("write", root.GetProperty("operation").GetString());
        Assert.Equal(100, root.GetProperty("count").GetInt32());
        Assert.Equal(8192, root.GetProperty("buffer-size").GetInt32());
        Assert.Equal(8192, root.GetProperty("step").GetInt32());
        Assert.Equal(16, root.GetProperty("depth").GetInt32());
        Assert.Equal(3, root.GetProperty("flushes").GetInt32());
        Assert.True(root.GetProperty("seconds").GetDouble() >= 0);

        RunResult quiet = await Imgtool("bench", "-q", "-c", "100", image);
        Assert.True(quiet.ExitCode == 0, quiet.ToString());
        Assert.Empty(quiet.Out); // qemu-img 7.2 prints its lines even with -q
        Assert.Empty(quiet.Err);
    }

    public static TheoryData<string> BadOptions => new()
    {
        "-c x",
        "-c -1",
        "-d -1",
        "-d x",
        "-o -1",
        "-S -1",
        "-s x",
        "--pattern 300",
        "--flush-interval 5",
        "-t bogus",
        "-n",
        "-w -o 2M",
        "-w -s 2M",
        "-w -o 1020k -s 8k",
        "-w -c 500 -s 4k -S 12k -o 1000",
        "-w --flush-interval 8 -d 16",
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public async Task Bad_options_fail_as_in_qemu_with_one_line_and_the_image_unchanged(string options)
    {
        string image = _dir.File("image.qcow2");
        await Ok(QemuImg("create", "-f", "qcow2", image, "1M"));
        byte[] before = await File.ReadAllBytesAsync(image);
        string[] args = ["bench", .. options.Contains("-c ", StringComparison.Ordinal) ? Array.Empty<string>() : ["-c", "10"], .. options.Split(' '), image];
        RunResult qemu = await QemuImg(args);
        Assert.NotEqual(0, qemu.ExitCode);
        await Ok(QemuImg("create", "-f", "qcow2", image, "1M")); // qemu-img may have written before it failed
        before = await File.ReadAllBytesAsync(image);
        RunResult us = await Imgtool(args);
        Assert.NotEqual(0, us.ExitCode);
        Assert.Single(us.Err.TrimEnd().Split('\n'), l => !l.StartsWith("Try ", StringComparison.Ordinal));
        Assert.StartsWith("imgtool: ", us.Err, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(image));
    }

    [Fact]
    public async Task Depth_zero_is_refused_where_qemu_img_waits_forever()
    {
        string image = _dir.File("image.raw");
        await Ok(QemuImg("create", "-f", "raw", image, "1M"));
        RunResult us = await Imgtool("bench", "-d", "0", "-c", "10", image);
        Assert.NotEqual(0, us.ExitCode);
        Assert.Contains("Invalid queue depth", us.Err, StringComparison.Ordinal);
    }

    private static byte[] Model(string options)
    {
        string[] parts = options.Split(' ');
        long Value(string flag, long fallback)
        {
            int i = Array.IndexOf(parts, flag);
            if (i < 0)
            {
                return fallback;
            }

            string text = parts[i + 1];
            return text.StartsWith("0x", StringComparison.Ordinal)
                ? Convert.ToInt64(text[2..], 16)
                : text.Length > 1 && text[0] == '0' && char.IsAsciiDigit(text[^1]) ? Convert.ToInt64(text[1..], 8)
                : Block.Options.SizeParser.Parse(text);
        }

        long count = Value("-c", 75000);
        long buffer = Value("-s", 4096);
        long step = Value("-S", buffer);
        long offset = Value("-o", 0);
        byte pattern = (byte)Value("--pattern", 0);
        byte[] model = new byte[Size];
        for (long i = 0; i < count; i++)
        {
            model.AsSpan((int)offset, (int)buffer).Fill(pattern);
            offset = (offset + step) % Size;
        }

        return model;
    }

    private static string WithoutTime(string output) => CompletedLine().Replace(output, "Run completed in T seconds.");

    [GeneratedRegex(@"Run completed in \d+\.\d{3} seconds\.")]
    private static partial Regex CompletedLine();

    private static async Task Ok(Task<RunResult> run)
    {
        RunResult result = await run;
        Assert.True(result.ExitCode == 0, result.ToString());
    }
}

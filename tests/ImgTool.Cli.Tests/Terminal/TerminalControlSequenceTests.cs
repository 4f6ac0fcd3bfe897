using System.Text.Json;

namespace ImgTool.Cli.Tests.Terminal;

/// <summary>
/// Issue 19 item 2: on a terminal imgtool writes no terminal control sequence. The runtime's console set-up used to
/// put xterm's keypad_xmit (ESC[?1h ESC=) before every command's output, JSON included, so
/// `ssh -t host imgtool info --output json x | jq` broke. The live progress line is only text and carriage returns.
/// </summary>
public sealed class TerminalControlSequenceTests : IDisposable
{
    private const byte Escape = 0x1B;
    private readonly TempDir _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Info_output_json_on_a_terminal_is_only_the_json()
    {
        await QemuImgCreateAsync("x.qcow2", "qcow2", "1M");

        TerminalResult result = await TerminalRun.ImgtoolAsync(_directory.Path, ["info", "--output", "json", "x.qcow2"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.DoesNotContain(Escape, result.Bytes);
        // The terminal turns \n into \r\n; apart from that the bytes are the JSON document and nothing else.
        using JsonDocument document = JsonDocument.Parse(result.Text.Replace("\r\n", "\n", StringComparison.Ordinal));
        Assert.Equal("qcow2", document.RootElement.GetProperty("format").GetString());
    }

    [Theory]
    [InlineData("info", "x.qcow2")]
    [InlineData("check", "x.qcow2")]
    [InlineData("map", "x.qcow2")]
    [InlineData("info", "--backing-chian", "x.qcow2")] // an error on stderr, which is the same terminal
    [InlineData("info", "missing.qcow2")]
    [InlineData("--help")]
    public async Task Human_output_and_errors_on_a_terminal_carry_no_escape(params string[] args)
    {
        await QemuImgCreateAsync("x.qcow2", "qcow2", "1M");

        TerminalResult result = await TerminalRun.ImgtoolAsync(_directory.Path, args);

        Assert.True(result.Bytes.Length > 0, result.ToString());
        Assert.DoesNotContain(Escape, result.Bytes);
    }

    /// <summary>The live progress line is "    (p/100%)\r" repeated: text and carriage returns, no escape.</summary>
    [Fact]
    public async Task The_live_progress_line_is_the_only_output_and_has_no_escape()
    {
        await QemuImgCreateAsync("src.qcow2", "qcow2", "8M");

        TerminalResult result = await TerminalRun.ImgtoolAsync(_directory.Path, ["convert", "-p", "-O", "raw", "src.qcow2", "dst.raw"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.DoesNotContain(Escape, result.Bytes);
        Assert.Contains("(100.00/100%)\r", result.Text, StringComparison.Ordinal);
    }

    /// <summary>stdout redirected to a file while stderr stays on the terminal: neither gets a control sequence.</summary>
    [Fact]
    public async Task With_stdout_redirected_neither_the_file_nor_the_terminal_gets_an_escape()
    {
        await QemuImgCreateAsync("src.qcow2", "qcow2", "8M");

        TerminalResult result = await TerminalRun.ImgtoolAsync(_directory.Path, ["convert", "-p", "-O", "raw", "src.qcow2", "dst.raw"], " > progress.txt; "
            + TerminalRun.Quote(TerminalRun.Imgtool) + " info --output json dst.raw > info.json; " + TerminalRun.Quote(TerminalRun.Imgtool) + " info --bogus dst.raw");

        Assert.DoesNotContain(Escape, result.Bytes);
        Assert.Contains("unknown option '--bogus'", result.Text, StringComparison.Ordinal);
        byte[] progress = await File.ReadAllBytesAsync(_directory.File("progress.txt"));
        Assert.DoesNotContain(Escape, progress);
        Assert.Contains("(100.00/100%)", System.Text.Encoding.ASCII.GetString(progress), StringComparison.Ordinal);
        byte[] json = await File.ReadAllBytesAsync(_directory.File("info.json"));
        Assert.Equal((byte)'{', json[0]);
        using JsonDocument document = JsonDocument.Parse(json);
    }

    /// <summary>Two commands appending to one redirected file: the second writes after the first, not over it.</summary>
    [Fact]
    public async Task Output_redirected_to_a_shared_file_advances_its_offset()
    {
        await QemuImgCreateAsync("x.qcow2", "qcow2", "1M");
        string imgtool = TerminalRun.Quote(TerminalRun.Imgtool);

        await TerminalRun.ShellAsync(_directory.Path, $"({imgtool} info --output json x.qcow2; {imgtool} info x.qcow2) > both.txt");

        string both = await File.ReadAllTextAsync(_directory.File("both.txt"));
        Assert.StartsWith("{", both, StringComparison.Ordinal);
        Assert.Contains("\n}\nimage: x.qcow2\n", both, StringComparison.Ordinal);
    }

    /// <summary>A writable boot is handed over to the JIT machine host by exec: its output is as clean.</summary>
    [Fact]
    public async Task Boot_on_the_machine_host_writes_no_escape_of_its_own()
    {
        byte[] disk = new byte[1 << 20];
        disk[0] = 0xFA; // cli
        disk[1] = 0xF4; // hlt
        disk[510] = 0x55;
        disk[511] = 0xAA;
        await File.WriteAllBytesAsync(_directory.File("halt.img"), disk);

        TerminalResult result = await TerminalRun.ImgtoolAsync(_directory.Path, ["boot", "-f", "raw", "halt.img", "--writable", "--output", "json"]);

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.DoesNotContain(Escape, result.Bytes);
        using JsonDocument document = JsonDocument.Parse(result.Text.Replace("\r\n", "\n", StringComparison.Ordinal));
        Assert.Equal("jit", document.RootElement.GetProperty("runtime").GetString());
    }

    private async Task QemuImgCreateAsync(string name, string format, string size)
    {
        RunResult created = await Tools.QemuImg("create", "-q", "-f", format, _directory.File(name), size);
        Assert.True(created.ExitCode == 0, created.ToString());
    }
}

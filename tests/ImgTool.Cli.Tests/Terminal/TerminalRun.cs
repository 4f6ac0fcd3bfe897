using System.Diagnostics;

namespace ImgTool.Cli.Tests.Terminal;

/// <summary>What a command run on a pseudo-terminal wrote to it (stdout and stderr together, as a user sees them).</summary>
internal sealed record TerminalResult(int ExitCode, byte[] Bytes)
{
    public string Text => System.Text.Encoding.UTF8.GetString(Bytes);

    public override string ToString() => $"exit {ExitCode}, terminal bytes: {Escape(Bytes)}";

    /// <summary>The bytes with control characters spelled out, so a failure shows where an ESC came.</summary>
    public static string Escape(byte[] bytes) =>
        string.Concat(bytes.Take(600).Select(b => b switch
        {
            0x1B => "<ESC>",
            (byte)'\r' => "\\r",
            (byte)'\n' => "\\n\n",
            < 0x20 or >= 0x7F => $"<{b:X2}>",
            _ => ((char)b).ToString(),
        }));
}

/// <summary>
/// Runs the published imgtool (out/bin/imgtool, the NativeAOT binary users run; tools/test.sh builds it when
/// missing) on a terminal with util-linux's `script`, because what reaches a terminal (the runtime's terminal
/// set-up, the live progress line) only happens when stdout is one.
/// </summary>
internal static class TerminalRun
{
    public static string Imgtool
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ImgTool.sln")))
            {
                directory = directory.Parent;
            }

            Assert.NotNull(directory);
            string path = Path.Combine(directory.FullName, "out", "bin", "imgtool");
            Assert.True(File.Exists(path), $"{path} is missing: tools/build.sh builds it (tools/test.sh runs it when it is missing)");
            return path;
        }
    }

    /// <summary>Quotes a word for sh.</summary>
    public static string Quote(string word) => "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>The published imgtool with these arguments, then <paramref name="shellSuffix"/> (a redirection, say).</summary>
    public static Task<TerminalResult> ImgtoolAsync(string workingDirectory, IEnumerable<string> args, string shellSuffix = "") =>
        ShellAsync(workingDirectory, string.Join(' ', args.Prepend(Imgtool).Select(Quote)) + shellSuffix);

    /// <summary>Runs a shell command line on a new pseudo-terminal; the bytes are everything written to the terminal.</summary>
    public static async Task<TerminalResult> ShellAsync(string workingDirectory, string commandLine)
    {
        // -q: no "Script started" lines; -e: the command's exit code; the typescript file is not wanted.
        var start = new ProcessStartInfo("script", ["-q", "-e", "-c", commandLine, "/dev/null"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory,
        };
        // A terminal type with a keypad_xmit string (xterm's is ESC[?1h ESC=), so its absence from the output is a result.
        start.Environment["TERM"] = "xterm";
        using Process process = Process.Start(start) ?? throw new InvalidOperationException("cannot start script (util-linux)");
        process.StandardInput.Close();
        using var bytes = new MemoryStream();
        Task copy = process.StandardOutput.BaseStream.CopyToAsync(bytes);
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        await copy;
        string scriptErrors = await stderr;
        Assert.True(scriptErrors.Length == 0, $"script: {scriptErrors}");
        return new TerminalResult(process.ExitCode, bytes.ToArray());
    }
}

using System.Diagnostics;
using System.Globalization;

namespace ImgTool.Bench;

/// <summary>One timed run of one tool.</summary>
internal sealed record Measurement(double WallMs, long PeakRssKiB, int ExitCode, string Stdout, string Stderr);

/// <summary>The output of an untimed helper process (cp, stat, a verification qemu-img).</summary>
internal sealed record ProcessOutput(int ExitCode, string Stdout, string Stderr);

/// <summary>
/// Runs cases: one warm-up per tool, then the timed runs alternating imgtool and qemu-img so that both
/// meet the same page-cache state (a block of imgtool runs followed by a block of qemu-img runs would
/// hand the second tool a cache the first one warmed).
/// </summary>
internal sealed class Runner(string timePath, string workDir, TextWriter progress)
{
    // GNU time's %M is the peak resident set size in KiB (time >= 1.8; 1.7 reported 4x too much).
    private const string TimeFormat = "%e %M";

    private readonly string _timeOutputPath = Path.Combine(workDir, ".time-output");

    public CaseResult RunCase(BenchCase benchCase, BenchContext context, int runs)
    {
        var imgtoolRuns = new List<Measurement>(runs);
        var qemuImgRuns = new List<Measurement>(runs);
        progress.Write($"{benchCase.Name}: warm-up");
        try
        {
            benchCase.Prepare?.Invoke(context);

            // Untimed: write back what the test images' preparation and earlier cases left dirty, so that no run
            // pays for it. Not before every run: an output synced and then deleted costs the disk more (freeing
            // its blocks) than one deleted while still in the page cache, as every run's output is here.
            RunChecked("sync");
            RunOnce(benchCase, context, Tool.Imgtool);
            RunOnce(benchCase, context, Tool.QemuImg);
            for (int run = 1; run <= runs; run++)
            {
                progress.Write($" {run}");
                imgtoolRuns.Add(RunOnce(benchCase, context, Tool.Imgtool));
                qemuImgRuns.Add(RunOnce(benchCase, context, Tool.QemuImg));
            }
        }
        finally
        {
            // End the progress line so that an error message starts on a line of its own.
            progress.WriteLine();
        }

        IReadOnlyList<CaseNote> notes =
            [.. benchCase.ReadImgtoolOutput?.Invoke(imgtoolRuns) ?? [], .. benchCase.Verify?.Invoke(context) ?? []];
        benchCase.AfterCase?.Invoke(context);
        return new CaseResult(benchCase, new ToolStats(imgtoolRuns), new ToolStats(qemuImgRuns), notes);
    }

    private Measurement RunOnce(BenchCase benchCase, BenchContext context, Tool tool)
    {
        benchCase.BeforeEachRun?.Invoke(context, tool);
        string program = context.ProgramFor(benchCase, tool);
        IReadOnlyList<string> args = context.Paths.Expand(benchCase.ArgsFor(tool), tool);
        Measurement measurement = Measure(program, args, benchCase.DiscardStdout);
        if (measurement.ExitCode != benchCase.ExpectedExitCode && !(tool == Tool.Imgtool && benchCase.ImgtoolMayFail))
        {
            throw new BenchException(
                $"case '{benchCase.Name}': {tool.DisplayName(benchCase)} exited with {measurement.ExitCode}, " +
                $"expected {benchCase.ExpectedExitCode}\n  command: {CommandLine(program, args)}" +
                Indent("stdout", measurement.Stdout) + Indent("stderr", measurement.Stderr));
        }

        return measurement;
    }

    /// <summary>
    /// Wall time comes from our own Stopwatch (GNU time's %e has 10 ms resolution, too coarse for info);
    /// peak RSS comes from GNU time, which reads it from the child's rusage. The GNU time process adds
    /// well under a millisecond, the same for both tools. Output goes through pipes that we drain
    /// concurrently, so a tool never blocks on a full pipe.
    /// </summary>
    public Measurement Measure(string program, IReadOnlyList<string> args, bool discardStdout)
    {
        var startInfo = new ProcessStartInfo(timePath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string timeArg in (string[])["-f", TimeFormat, "-o", _timeOutputPath, program])
        {
            startInfo.ArgumentList.Add(timeArg);
        }

        foreach (string arg in args)
        {
            startInfo.ArgumentList.Add(arg);
        }

        File.Delete(_timeOutputPath);
        long started = Stopwatch.GetTimestamp();
        using Process process = Process.Start(startInfo) ?? throw new BenchException($"cannot start {timePath}");
        Task<string> stdout = discardStdout
            ? process.StandardOutput.BaseStream.CopyToAsync(Stream.Null).ContinueWith(_ => "", TaskScheduler.Default)
            : process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        TimeSpan elapsed = Stopwatch.GetElapsedTime(started);
        return new Measurement(
            elapsed.TotalMilliseconds, ReadPeakRssKiB(program), process.ExitCode, stdout.Result, stderr.Result);
    }

    private long ReadPeakRssKiB(string program)
    {
        // When the command fails, GNU time writes "Command exited with non-zero status N" first; the
        // formatted line is always the last one.
        string[] lines = File.Exists(_timeOutputPath)
            ? File.ReadAllLines(_timeOutputPath).Where(line => line.Length > 0).ToArray()
            : [];
        string[] fields = lines.Length > 0 ? lines[^1].Split(' ') : [];
        if (fields.Length != 2 || !long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out long kib))
        {
            throw new BenchException(
                $"cannot read GNU time output for {program} from {_timeOutputPath}: '{string.Join(" / ", lines)}'");
        }

        return kib;
    }

    /// <summary>Runs a helper process to completion, untimed, capturing its output.</summary>
    public static ProcessOutput Run(string program, params IReadOnlyList<string> args)
    {
        var startInfo = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            startInfo.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(startInfo) ?? throw new BenchException($"cannot start {program}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return new ProcessOutput(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs a helper that must succeed; returns its stdout.</summary>
    public static string RunChecked(string program, params IReadOnlyList<string> args)
    {
        ProcessOutput output = Run(program, args);
        if (output.ExitCode != 0)
        {
            throw new BenchException(
                $"{CommandLine(program, args)} exited with {output.ExitCode}" +
                Indent("stdout", output.Stdout) + Indent("stderr", output.Stderr));
        }

        return output.Stdout;
    }

    /// <summary>Bytes the file occupies on disk (st_blocks * block size), what du reports, holes excluded.</summary>
    public static long AllocatedBytes(string path)
    {
        string[] fields = RunChecked("stat", "-c", "%b %B", path).Trim().Split(' ');
        return long.Parse(fields[0], CultureInfo.InvariantCulture) * long.Parse(fields[1], CultureInfo.InvariantCulture);
    }

    public static string CommandLine(string program, IEnumerable<string> args) =>
        string.Join(' ', args.Prepend(program).Select(arg => arg.Contains(' ') ? $"'{arg}'" : arg));

    public static string Indent(string label, string text)
    {
        string trimmed = text.TrimEnd();
        if (trimmed.Length == 0)
        {
            return "";
        }

        // The end of a long output is where a failure message is; keep that part.
        const int MaxChars = 4000;
        if (trimmed.Length > MaxChars)
        {
            trimmed = "..." + trimmed[^MaxChars..];
        }

        return $"\n  {label}:\n    " + trimmed.Replace("\n", "\n    ");
    }
}

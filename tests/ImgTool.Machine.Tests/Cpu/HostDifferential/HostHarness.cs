using System.Diagnostics;
using System.Globalization;

namespace ImgTool.Machine.Tests.Cpu.HostDifferential;

/// <summary>
/// Builds tools/cpu-harness/alu with gcc as a 32-bit program (so the host runs the exact bytes the
/// emulator runs in 32-bit protected mode, and DAA..AAD are valid) into a temporary folder, runs it
/// with a fixed seed, and parses its vectors. tools/test.sh installs gcc and gcc-multilib.
/// </summary>
internal static class HostHarness
{
    /// <summary>The seed every run uses, so the vectors are the same each time.</summary>
    public const ulong Seed = 0x1D1FF;

    private static readonly TimeSpan BuildTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);

    public static string SourceFolder => Path.Combine(TestPaths.RepositoryRoot, "tools", "cpu-harness", "alu");

    public static (HarnessLayout Layout, List<HostVector> Vectors) BuildAndRun()
    {
        string folder = Directory.CreateTempSubdirectory("imgtool-alu-harness-").FullName;
        try
        {
            string executable = Path.Combine(folder, "alu-harness");
            var arguments = new List<string> { "-m32", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", executable };
            arguments.AddRange(Directory.GetFiles(SourceFolder, "*.c").Order(StringComparer.Ordinal));
            var (buildExit, buildErrors) = RunProcess("gcc", arguments, BuildTimeout, _ => { });
            Assert.True(buildExit == 0, $"gcc -m32 could not build the harness (tools/test.sh installs gcc and gcc-multilib):\n{buildErrors}");

            HarnessLayout? layout = null;
            var vectors = new List<HostVector>();
            var (runExit, runErrors) = RunProcess(executable, [Seed.ToString(CultureInfo.InvariantCulture)], RunTimeout, line =>
            {
                if (line.StartsWith('V'))
                {
                    vectors.Add(HostVector.Parse(line));
                }
                else if (line.StartsWith('H'))
                {
                    layout = HarnessLayout.Parse(line);
                }
            });
            Assert.True(runExit == 0, $"the harness failed (exit {runExit}):\n{runErrors}");
            Assert.True(layout is not null, "the harness printed no header line");
            return (layout!, vectors);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static (int Exit, string Errors) RunProcess(string program, IEnumerable<string> arguments, TimeSpan timeout, Action<string> onLine)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {program}");

        // A hung harness must not hang the test: past the timeout the process is killed, which ends the reads.
        int timedOut = 0;
        using var watchdog = new Timer(_ =>
        {
            Interlocked.Exchange(ref timedOut, 1);
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It has exited meanwhile.
            }
        }, null, timeout, Timeout.InfiniteTimeSpan);
        var errors = process.StandardError.ReadToEndAsync();
        while (process.StandardOutput.ReadLine() is { } line)
        {
            onLine(line);
        }

        process.WaitForExit();
        if (Volatile.Read(ref timedOut) != 0)
        {
            return (-1, $"{program} did not finish within {timeout.TotalSeconds} s");
        }

        return (process.ExitCode, errors.Result);
    }
}

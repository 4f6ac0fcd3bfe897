using System.Diagnostics;

namespace ImgTool.Machine.Tests.Cpu.X87;

/// <summary>
/// Builds tools/cpu-harness/x87 with gcc into a temporary folder (once per test run) and runs it: the host CPU's
/// x87 is the reference. gcc comes from tools/test.sh (apt-get install gcc); without it the tests fail, never skip.
/// </summary>
internal static class X87Harness
{
    public const ulong Seed = 0x5EED_0087;
    public const int CasesPerOperation = 1200;

    private static readonly Lazy<string[]> Output = new(Run, LazyThreadSafetyMode.ExecutionAndPublication);

    public static string[] Lines => Output.Value;

    private static string[] Run()
    {
        Assert.True(OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture
            == System.Runtime.InteropServices.Architecture.X64, "the x87 differential test needs an x86-64 Linux host");
        string source = Path.Combine(TestPaths.RepositoryRoot, "tools", "cpu-harness", "x87");
        string folder = Path.Combine(Path.GetTempPath(), "imgtool-x87-" + Environment.ProcessId);
        Directory.CreateDirectory(folder);
        try
        {
            string binary = Path.Combine(folder, "x87harness");
            (int buildStatus, string buildOutput) = Execute("gcc", ["-O1", "-mno-red-zone", "-Wall", "-o", binary, Path.Combine(source, "x87harness.c")], source);
            Assert.True(buildStatus == 0, "gcc failed (tools/test.sh installs gcc): " + buildOutput);
            // IMGTOOL_X87_SEED / IMGTOOL_X87_CASES widen a local run; the default is the fixed, reproducible set.
            string seed = Environment.GetEnvironmentVariable("IMGTOOL_X87_SEED") ?? Seed.ToString(System.Globalization.CultureInfo.InvariantCulture);
            string cases = Environment.GetEnvironmentVariable("IMGTOOL_X87_CASES") ?? CasesPerOperation.ToString(System.Globalization.CultureInfo.InvariantCulture);
            (int runStatus, string output) = Execute(binary, [seed, cases], folder);
            Assert.True(runStatus == 0, "x87harness failed: " + output[..Math.Min(output.Length, 2000)]);
            return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    private static (int Status, string Output) Execute(string program, string[] arguments, string directory)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = directory,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + program);
        Task<string> error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output + error.Result);
    }
}

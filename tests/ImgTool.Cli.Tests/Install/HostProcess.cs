using System.Diagnostics;

namespace ImgTool.Cli.Tests.Install;

/// <summary>Runs a host program for the install tests: its standard output, or the test fails with its exit code and standard error.</summary>
internal static class HostProcess
{
    public static string Run(string program, string[] args, string directory, params (string Name, string Value)[] environment)
    {
        var start = new ProcessStartInfo(program, args) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)} exited {process.ExitCode}: {error}");
        return output.Result;
    }
}

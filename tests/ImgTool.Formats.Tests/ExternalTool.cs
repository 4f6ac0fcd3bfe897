using System.Diagnostics;

namespace ImgTool.Formats.Tests;

/// <summary>Runs a peer tool (qemu-img) on files the format tests wrote; tools/test.sh installs it.</summary>
internal static class ExternalTool
{
    public static async Task<(int Code, string Output)> RunAsync(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }
}

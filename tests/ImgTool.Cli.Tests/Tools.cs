using System.Diagnostics;
using ImgTool.Cli;

namespace ImgTool.Cli.Tests;

internal sealed record RunResult(int ExitCode, string Out, string Err)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Out}\nstderr:\n{Err}";
}

/// <summary>Runs imgtool in-process and the real qemu tools as processes.</summary>
internal static class Tools
{
    public static async Task<RunResult> Imgtool(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = await ImgToolCli.RunAsync(args, output, error);
        return new RunResult(code, output.ToString(), error.ToString());
    }

    /// <summary>Runs qemu-img (or another qemu-utils tool). Missing tools fail the test: tools/test.sh installs them.</summary>
    public static Task<RunResult> Qemu(string tool, params string[] args) => QemuIn(null, tool, args);

    /// <summary>Runs a qemu tool in <paramref name="workingDirectory"/>: qemu-img 7.2 resolves a relative qcow2 data file
    /// name against its working directory, not the image's folder.</summary>
    public static async Task<RunResult> QemuIn(string? workingDirectory, string tool, params string[] args)
    {
        // QEMU calibrates LUKS's PBKDF2 iteration count on the thread's CPU time, and gives up when a round
        // measured 0 ms, which happens on a loaded machine (crypto/pbkdf.c): that is QEMU's flake, not a result.
        const string CalibrationFlake = "Unable to get accurate CPU usage";
        const int Attempts = 5;
        RunResult result = await RunQemuOnce(workingDirectory, tool, args);
        for (int attempt = 1; attempt < Attempts && result.ExitCode != 0 && result.Err.Contains(CalibrationFlake, StringComparison.Ordinal); attempt++)
        {
            result = await RunQemuOnce(workingDirectory, tool, args);
        }

        return result;
    }

    private static async Task<RunResult> RunQemuOnce(string? workingDirectory, string tool, string[] args)
    {
        var start = new ProcessStartInfo(tool, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? string.Empty,
        };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{tool} is not installed; run tools/test.sh, which installs qemu-utils", e);
        }

        using (process)
        {
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            return new RunResult(process.ExitCode, await stdout, await stderr);
        }
    }

    public static Task<RunResult> QemuImg(params string[] args) => Qemu("qemu-img", args);

    /// <summary>Writes seeded random data at the given places of a file (creating it sparse at the given size).</summary>
    public static byte[] SparseFile(string path, long size, params (long Offset, int Length)[] extents)
    {
        byte[] model = new byte[size];
        var random = new Random(42);
        using (var stream = new FileStream(path, FileMode.Create))
        {
            stream.SetLength(size);
            foreach (var (offset, length) in extents)
            {
                random.NextBytes(model.AsSpan((int)offset, length));
                stream.Position = offset;
                stream.Write(model, (int)offset, length);
            }
        }

        return model;
    }

    /// <summary>Bytes allocated on disk (du).</summary>
    public static long Allocated(string path)
    {
        var result = Qemu("stat", "-c", "%b %B", path).GetAwaiter().GetResult();
        string[] parts = result.Out.Split(' ');
        return long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture) * long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}

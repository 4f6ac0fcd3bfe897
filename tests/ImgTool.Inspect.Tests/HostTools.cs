using System.Diagnostics;
using System.Text.Json;
using ImgTool.Cli;

namespace ImgTool.Inspect.Tests;

internal sealed record RunResult(int ExitCode, string Out, string Err, byte[] Bytes)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Out}\nstderr:\n{Err}";
}

/// <summary>Runs imgtool in-process and the Debian tools the tests compare with (blkid, sfdisk, debugfs, mtools,
/// qemu-img) as processes. A missing tool fails the test: tools/test.sh installs them.</summary>
internal static class HostTools
{
    public static async Task<RunResult> Imgtool(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var binary = new MemoryStream();
        int code = await ImgToolCli.RunAsync(args, output, error, binary);
        return new RunResult(code, output.ToString(), error.ToString(), binary.ToArray());
    }

    public static async Task<JsonElement> InspectJson(string image)
    {
        RunResult result = await Imgtool("inspect", "--output", "json", image);
        Assert.True(result.ExitCode == 0, result.ToString());
        return JsonDocument.Parse(result.Out).RootElement.Clone();
    }

    /// <summary>Runs a tool; a non-zero exit fails the test unless <paramref name="check"/> is false.</summary>
    public static async Task<RunResult> Run(string tool, params string[] args) => await RunIn(null, true, tool, args);

    public static async Task<RunResult> RunUnchecked(string tool, params string[] args) => await RunIn(null, false, tool, args);

    public static async Task<RunResult> RunIn(string? directory, bool check, string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = directory ?? string.Empty,
        };
        start.Environment["MTOOLS_SKIP_CHECK"] = "1";
        // UTF-8, so that mtools stores and prints non-ASCII long names as they are.
        start.Environment["LC_ALL"] = "C.UTF-8";
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{tool} is not installed; run tools/test.sh, which installs what the tests need", e);
        }

        using (process)
        {
            process.StandardInput.Close();
            using var bytes = new MemoryStream();
            Task copy = process.StandardOutput.BaseStream.CopyToAsync(bytes);
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            await copy;
            byte[] data = bytes.ToArray();
            var result = new RunResult(process.ExitCode, System.Text.Encoding.UTF8.GetString(data), await stderr, data);
            if (check && result.ExitCode != 0)
            {
                throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed: {result}");
            }

            return result;
        }
    }

    /// <summary>Runs a shell pipeline (for cryptsetup's passphrase on stdin).</summary>
    public static Task<RunResult> Shell(string script) => Run("/bin/sh", "-c", script);

    /// <summary>Copies a file into another at a byte offset, leaving holes where the source has zeros.</summary>
    public static void CopyInto(string source, string target, long offsetBytes)
    {
        using var input = new FileStream(source, FileMode.Open, FileAccess.Read);
        using var output = new FileStream(target, FileMode.Open, FileAccess.Write);
        byte[] buffer = new byte[1 << 20];
        long position = 0;
        for (int n; (n = input.Read(buffer)) > 0; position += n)
        {
            if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0))
            {
                output.Position = offsetBytes + position;
                output.Write(buffer, 0, n);
            }
        }
    }

    /// <summary>`blkid -p -o export` of a byte range, as a dictionary (DEVNAME dropped).</summary>
    public static async Task<Dictionary<string, string>> Blkid(string image, long offsetBytes, long sizeBytes)
    {
        RunResult result = await RunUnchecked("blkid", "-p", "-o", "export", "-O", offsetBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-S", sizeBytes.ToString(System.Globalization.CultureInfo.InvariantCulture), image);
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && line[..eq] != "DEVNAME")
            {
                fields[line[..eq]] = line[(eq + 1)..].Replace("\\ ", " ", StringComparison.Ordinal);
            }
        }

        return fields;
    }
}

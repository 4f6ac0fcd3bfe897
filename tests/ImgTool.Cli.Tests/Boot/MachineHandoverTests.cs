using System.Diagnostics;
using System.Text.Json;

namespace ImgTool.Cli.Tests.Boot;

/// <summary>
/// The NativeAOT imgtool hands `boot` over to the JIT machine host (out/bin/machine/imgtool-machine) by exec:
/// the decision as a unit, and the published pair end to end (tools/test.sh runs tools/build.sh when the
/// binaries are missing): the host's JSON says it ran on the JIT, and its exit code reaches the caller.
/// </summary>
public sealed class MachineHandoverTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("imgtool-handover-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData(false, null, true, "/opt/imgtool/machine/imgtool-machine")]
    [InlineData(true, null, true, null)]                // already on the JIT: this is the host
    [InlineData(false, "in-process", true, null)]       // asked to stay
    [InlineData(false, null, false, null)]              // no host installed: the interpreter in this process
    public void The_aot_binary_hands_over_only_to_an_installed_host(bool dynamicCode, string? variable, bool hostExists, string? expected)
    {
        string? host = MachineHandover.HostPath(dynamicCode, "/opt/imgtool", variable, path => hostExists && path == "/opt/imgtool/machine/imgtool-machine");

        Assert.Equal(expected, host);
    }

    /// <summary>jmp $ runs until the budget; cli; hlt stops at once (both after SeaBIOS's 6 M instructions).</summary>
    private static readonly byte[] Spin = [0xEB, 0xFE], Halt = [0xFA, 0xF4];

    public static TheoryData<string, string?, string[], string, string> Runs => new()
    {
        // A short boot ends within the AOT prefix: no JIT start to pay.
        { "halt", null, [], "aot", "HaltedInterruptsOff" },
        // A long one is handed over and run again from reset on the JIT.
        { "spin", null, ["--max-instructions", "150000000"], "jit", "InstructionBudget" },
        { "spin", "in-process", ["--max-instructions", "150000000"], "aot", "InstructionBudget" },
        // A boot that writes to the image cannot run twice: it goes to the host at once.
        { "halt", null, ["--writable"], "jit", "HaltedInterruptsOff" },
    };

    [Theory]
    [MemberData(nameof(Runs))]
    public async Task The_published_imgtool_boots_on_the_runtime_the_handover_chose(string code, string? variable, string[] extra, string runtime, string outcome)
    {
        string imgtool = Path.Combine(RepositoryRoot(), "out", "bin", "imgtool");
        Assert.True(File.Exists(imgtool), $"{imgtool} is missing: tools/build.sh builds it (tools/test.sh runs it when it is missing)");
        string image = Path.Combine(_directory, $"{code}.img");
        byte[] bytes = new byte[1 << 20];
        (code == "spin" ? Spin : Halt).CopyTo(bytes, 0);
        bytes[510] = 0x55;
        bytes[511] = 0xAA;
        await File.WriteAllBytesAsync(image, bytes);

        var start = new ProcessStartInfo(imgtool, ["boot", "-f", "raw", image, "--expect", "never printed", "--output", "json", .. extra])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["IMGTOOL_MACHINE"] = variable;
        using var process = Process.Start(start)!;
        string stdout = await process.StandardOutput.ReadToEndAsync();
        string stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();

        Assert.True(process.ExitCode == 1, $"exit {process.ExitCode}: the failed boot's code should come back through the exec\n{stdout}\n{stderr}");
        JsonElement report = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(runtime, report.GetProperty("runtime").GetString());
        Assert.Equal(outcome, report.GetProperty("outcome").GetString());
        if (outcome == "InstructionBudget")
        {
            // The host ran the whole budget from reset, not the rest of it.
            Assert.InRange(report.GetProperty("instructions").GetInt64(), 150_000_000, 150_000_100);
        }
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ImgTool.sln")))
        {
            directory = directory.Parent;
        }

        Assert.NotNull(directory);
        return directory.FullName;
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ImgTool.Cli;

/// <summary>
/// `imgtool boot` on the JIT runtime. imgtool itself is NativeAOT for its 5 ms start, but an ahead-of-time
/// binary cannot compile code at run time, and the machine runs faster on the JIT (tiered PGO: 93 against 103 CPU
/// seconds for the same Linux boot, measured on this engine) and translates guest code only there. So the AOT
/// binary hands a boot over to imgtool-machine, the same commands published framework-dependent with ReadyToRun
/// (tools/build.sh puts it in machine/ beside imgtool), by exec: same process, same standard streams, same
/// signals and exit code, so a user still types only `imgtool boot ...`. info, map and check never pay for it,
/// nor does a short boot (BootCommand runs the first instructions here).
/// </summary>
internal static partial class MachineHandover
{
    /// <summary>The host beside the AOT binary: out/bin/machine/imgtool-machine.</summary>
    public const string HostFolder = "machine", HostName = "imgtool-machine";

    /// <summary>IMGTOOL_MACHINE=in-process keeps the boot in the AOT process (the interpreter alone), for comparison.</summary>
    public const string Variable = "IMGTOOL_MACHINE", InProcess = "in-process";

    /// <summary>The host to exec, or null to boot in this process: already on the JIT, told not to, or no host installed.</summary>
    public static string? HostPath(bool dynamicCodeSupported, string baseDirectory, string? variable, Func<string, bool> exists)
    {
        if (dynamicCodeSupported || variable == InProcess)
        {
            return null;
        }

        string host = Path.Combine(baseDirectory, HostFolder, HostName);
        return exists(host) ? host : null;
    }

    /// <summary>
    /// Instructions a boot runs in the AOT process before it is handed over: SeaBIOS to a bootloader's banner is
    /// about 6 M, a Linux boot 8 G. Every longer boot pays for the prefix again, so it stays short: 16 M run here in
    /// about 0.2 s (100 M took 1.0 s, 8 % of a Linux boot to user space).
    /// </summary>
    public const long PrefixInstructions = 16_000_000;

    /// <summary>The machine host to hand boots over to, or null to boot in this process.</summary>
    public static string? Host() =>
        HostPath(RuntimeFeature.IsDynamicCodeSupported, AppContext.BaseDirectory, Environment.GetEnvironmentVariable(Variable), File.Exists);

    /// <summary>Replaces this process with the machine host running this process's own arguments; returns only if exec failed.</summary>
    public static void Exec(TextWriter output, TextWriter error)
    {
        if (Host() is not { } host)
        {
            return;
        }

        output.Flush();
        error.Flush();
        string[] args = Environment.GetCommandLineArgs()[1..];
        string?[] argv = [host, .. args, null];
        Execv(host, argv);
        error.WriteLine($"imgtool: could not start {host} (errno {Marshal.GetLastPInvokeError()}); booting on the interpreter in this process");
    }

    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Execv(string path, string?[] argv);
}

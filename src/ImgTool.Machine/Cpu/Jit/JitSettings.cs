using System.Runtime.CompilerServices;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Whether hot blocks are translated to IL, and when a block counts as hot. Translation needs a runtime that
/// compiles code at run time: under NativeAOT (imgtool's own binary) <see cref="RuntimeFeature.IsDynamicCodeSupported"/>
/// is false and the interpreter runs alone, unchanged.
/// </summary>
/// <param name="Enabled">Translate hot blocks (ignored where dynamic code is not supported).</param>
/// <param name="HotThreshold">
/// Executions of a block before it is translated. A translation costs some 50-150 µs of IL emission and RyuJIT
/// compilation, about what 5-15 k interpreted instructions cost, so a block must run a few hundred times before
/// its translation (2-4x faster per instruction) has paid for itself; measured on the Linux boot, 200 to 2000
/// differ little and much lower thresholds spend their time compiling firmware code that runs a handful of times.
/// </param>
/// <param name="Background">
/// Compile on the translation worker's thread (<see cref="TranslationWorker"/>) while the block keeps running
/// interpreted; else at once, on the CPU's thread, so that a block runs translated from its hot execution on (the
/// vector tests translate every block on its first run). Boots compile in the background.
/// </param>
internal sealed record JitSettings(bool Enabled, int HotThreshold = JitSettings.DefaultHotThreshold, bool Background = false)
{
    public const int DefaultHotThreshold = 500;

    /// <summary>The environment variable that turns translation off (0) for comparison runs.</summary>
    public const string EnvironmentVariable = "IMGTOOL_JIT";

    /// <summary>No translation: the interpreter only.</summary>
    public static readonly JitSettings Off = new(false);

    /// <summary>Translation on, unless IMGTOOL_JIT=0 or the runtime cannot compile code.</summary>
    public static JitSettings FromEnvironment() =>
        new(Environment.GetEnvironmentVariable(EnvironmentVariable) != "0",
            int.TryParse(Environment.GetEnvironmentVariable("IMGTOOL_JIT_THRESHOLD"), out int t) ? t : DefaultHotThreshold, Background: true);

    /// <summary>True when this process can translate (CoreCLR with its JIT; false under NativeAOT).</summary>
    public static bool Supported => RuntimeFeature.IsDynamicCodeSupported;

    public bool Active => Enabled && Supported;
}

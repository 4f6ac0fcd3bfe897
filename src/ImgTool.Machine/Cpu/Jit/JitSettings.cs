using System.Runtime.CompilerServices;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Whether hot blocks are translated to IL, and when a block counts as hot. Translation needs a runtime that
/// compiles code at run time: under NativeAOT (imgtool's own binary) <see cref="RuntimeFeature.IsDynamicCodeSupported"/>
/// is false and the interpreter runs alone, unchanged.
/// </summary>
/// <param name="Enabled">Translate hot blocks (ignored where dynamic code is not supported).</param>
/// <param name="HotThreshold">
/// Executions of a block before it is translated (with the blocks it jumps to on its page, see <see cref="Region"/>).
/// A region costs some 3-4 ms of IL emission and RyuJIT compilation (on the worker thread, but a backlog leaves
/// hot code interpreted for longer), so only code that will run many times is worth it. Measured on the Linux
/// boot to its hash lines, quiet two-core machine: 500 gives 265 MIPS (5,209 regions, 17 s of compiling,
/// 90.5% translated), 2,000 gives 271, 5,000 gives 284 (2,365 regions, 8 s, 96.5%), 20,000 gives 205 (the 4.8%
/// left interpreted costs more than the compiles saved). IMGTOOL_JIT_THRESHOLD overrides it for such measurements.
/// </param>
/// <param name="Background">
/// Compile on the translation worker's thread (<see cref="TranslationWorker"/>) while the block keeps running
/// interpreted; else at once, on the CPU's thread, so that a block runs translated from its hot execution on (the
/// vector tests translate every block on its first run). Boots compile in the background.
/// </param>
internal sealed record JitSettings(bool Enabled, int HotThreshold = JitSettings.DefaultHotThreshold, bool Background = false)
{
    public const int DefaultHotThreshold = 5000;

    /// <summary>The environment variable that turns translation off (0) for comparison runs.</summary>
    public const string EnvironmentVariable = "IMGTOOL_JIT";

    /// <summary>No translation: the interpreter only.</summary>
    public static readonly JitSettings Off = new(false);

    /// <summary>Translation on, unless IMGTOOL_JIT=0 or the runtime cannot compile code.</summary>
    public static JitSettings FromEnvironment() =>
        new(Environment.GetEnvironmentVariable(EnvironmentVariable) != "0",
            int.TryParse(Environment.GetEnvironmentVariable(ThresholdVariable), out int threshold) && threshold > 0 ? threshold : DefaultHotThreshold,
            Background: true);

    /// <summary>The environment variable that sets the hot threshold (measurements).</summary>
    public const string ThresholdVariable = "IMGTOOL_JIT_THRESHOLD";

    /// <summary>True when this process can translate (CoreCLR with its JIT; false under NativeAOT).</summary>
    public static bool Supported => RuntimeFeature.IsDynamicCodeSupported;

    public bool Active => Enabled && Supported;
}

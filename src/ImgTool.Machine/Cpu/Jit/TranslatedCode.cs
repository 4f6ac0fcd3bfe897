namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// A region's translation (bound to the region's ops): runs from its head block at CS:EIP, retiring instructions
/// exactly as the interpreter's RunBlock would, block after block while control stays in the region and the budget
/// holds the next whole block (the caller enters only with budget for the head), and leaves through the same exits:
/// a pending fault delivered, EndBlock cleared, EIP at the next block.
/// </summary>
/// <param name="cpu">The CPU whose state the code changes; null only compiles the method.</param>
/// <param name="end">The instruction count at which the run loop's budget ends.</param>
/// <returns>False, with nothing changed, when an assumption the translation made (the stack size, a flat CS) does not hold: the interpreter runs the block.</returns>
internal delegate bool TranslatedCode(X86Cpu cpu, long end);

/// <summary>What the translator has done, for the boot report and the measurements.</summary>
internal sealed class JitStatistics
{
    /// <summary>Regions translated (a hot block and the blocks it jumps to on its page).</summary>
    public long BlocksTranslated;

    /// <summary>Blocks inside those regions, their heads included.</summary>
    public long RegionBlocks;

    public long OpsTranslated;

    /// <summary>Ops emitted as specialised IL rather than as a call to their handler.</summary>
    public long OpsSpecialised;

    /// <summary>Stopwatch ticks spent emitting IL and compiling it with RyuJIT (on the translation worker's thread when it runs in the background).</summary>
    public long CompileTicks;

    /// <summary>CPU time of the translating thread spent on it (wall time above includes waiting for a core).</summary>
    public long CompileCpuNanoseconds;

    public double CompileCpuSeconds => CompileCpuNanoseconds / 1e9;

    /// <summary>Regions whose translation failed on the worker (a translator bug; they stay interpreted).</summary>
    public long Failures;

    /// <summary>Instructions retired inside translated blocks.</summary>
    public long InstructionsTranslated;

    public double CompileSeconds => CompileTicks / (double)System.Diagnostics.Stopwatch.Frequency;
}

using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// A block's translation: runs all of the block's ops from CS:EIP, retiring them exactly as the interpreter's
/// RunBlock would (the caller enters it only with budget left for every op, so no budget check is needed inside),
/// and leaves through the same exits: a pending fault delivered, EndBlock cleared.
/// </summary>
/// <param name="cpu">The CPU whose state the block changes.</param>
/// <param name="ops">The block's ops (call-through handlers take their operands from them).</param>
/// <returns>False, with nothing changed, when an assumption the translation made (the stack size) does not hold: the interpreter runs the block.</returns>
internal delegate bool TranslatedCode(X86Cpu cpu, MicroOp[] ops);

/// <summary>What the translator has done, for the boot report and the measurements.</summary>
internal sealed class JitStatistics
{
    public long BlocksTranslated;
    public long OpsTranslated;

    /// <summary>Ops emitted as specialised IL rather than as a call to their handler.</summary>
    public long OpsSpecialised;

    /// <summary>Stopwatch ticks spent emitting IL and compiling it (the first call runs RyuJIT).</summary>
    public long CompileTicks;

    /// <summary>Instructions retired inside translated blocks.</summary>
    public long InstructionsTranslated;

    public double CompileSeconds => CompileTicks / (double)System.Diagnostics.Stopwatch.Frequency;
}

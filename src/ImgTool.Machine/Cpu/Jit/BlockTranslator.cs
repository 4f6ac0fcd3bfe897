using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Turns a hot block's <see cref="Region"/> into a <see cref="DynamicMethod"/> compiled by RyuJIT. The method
/// belongs to the head block: when the page's code is written, its blocks are dropped and the method with them
/// (dynamic methods are collectible). Translate may run on the translation worker's thread: it reads only the
/// region (ops copied when it was built) and writes only its result and the statistics (atomically).
/// </summary>
[RequiresDynamicCode("Emits IL at run time.")]
internal sealed class BlockTranslator(int hotThreshold, bool background)
{
    private static readonly Type[] Parameters = [typeof(MicroOp[]), typeof(X86Cpu), typeof(long)];

    public int HotThreshold { get; } = hotThreshold;

    /// <summary>Whether regions are compiled on the shared worker thread (else at once, on the CPU's thread).</summary>
    public bool Background { get; } = background;

    public JitStatistics Statistics { get; } = new();

    /// <summary>Translates and compiles the region, assuming the CPU state it was built in (checked on entry).</summary>
    public TranslatedCode Translate(Region region, TranslationContext context)
    {
        long start = Stopwatch.GetTimestamp();
        long cpuStart = ThreadCpuClock.Nanoseconds();

        // Owned by X86Cpu's module with visibility checks skipped: the IL calls internal handlers and CPU members.
        var method = new DynamicMethod($"block_{region.Head.Physical:X8}", typeof(bool), Parameters, typeof(X86Cpu).Module, skipVisibility: true);
        var emitter = new BlockEmitter(method.GetILGenerator(), region, context);
        int specialised = emitter.EmitRegion();
        var code = method.CreateDelegate<TranslatedCode>(region.Ops);

        // RyuJIT compiles on the first call: make it now (a null CPU returns at once), here rather than in the run loop.
        code(null!, 0);
        Interlocked.Add(ref Statistics.CompileTicks, Stopwatch.GetTimestamp() - start);
        Interlocked.Add(ref Statistics.CompileCpuNanoseconds, ThreadCpuClock.Nanoseconds() - cpuStart);
        Interlocked.Increment(ref Statistics.BlocksTranslated);
        Interlocked.Add(ref Statistics.RegionBlocks, region.Blocks.Length);
        Interlocked.Add(ref Statistics.OpsTranslated, region.OpCount);
        Interlocked.Add(ref Statistics.OpsSpecialised, specialised);
        return code;
    }
}

using System.Diagnostics.CodeAnalysis;
using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Turns a hot <see cref="CodeBlock"/> into a <see cref="DynamicMethod"/> that RyuJIT compiles to native code.
/// The method belongs to the block: when the block's bytes are written the block is dropped and the method with
/// it (dynamic methods are collectible). Owned by one CPU; not thread-safe.
/// </summary>
[RequiresDynamicCode("Emits IL at run time.")]
internal sealed class BlockTranslator(int hotThreshold)
{
    private static readonly Type[] Parameters = [typeof(X86Cpu), typeof(MicroOp[])];

    public int HotThreshold { get; } = hotThreshold;

    public JitStatistics Statistics { get; } = new();

    /// <summary>Translates the block; stack32 is the SS size now, which translated PUSH/POP assume.</summary>
    public TranslatedCode? Translate(CodeBlock block, bool stack32)
    {
        // Owned by X86Cpu's module with visibility checks skipped: the IL calls internal handlers and CPU members.
        var method = new DynamicMethod($"block_{block.Physical:X8}", typeof(bool), Parameters, typeof(X86Cpu).Module, skipVisibility: true);
        var emitter = new BlockEmitter(method.GetILGenerator(), block) { Stack32 = stack32 };
        int specialised = emitter.EmitBlock();
        var code = method.CreateDelegate<TranslatedCode>();
        Statistics.BlocksTranslated++;
        Statistics.OpsTranslated += block.Count;
        Statistics.OpsSpecialised += specialised;
        return code;
    }
}

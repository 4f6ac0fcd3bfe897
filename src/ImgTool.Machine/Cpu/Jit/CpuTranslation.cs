using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using ImgTool.Machine.Cpu.Decode;
using ImgTool.Machine.Cpu.Jit;

namespace ImgTool.Machine.Cpu;

/// <summary>Something that watches the run block by block (the lockstep harness).</summary>
internal interface IBlockObserver
{
    /// <summary>Called after every block, uncached step, interrupt-free iteration of the run loop.</summary>
    void BlockEnded(X86Cpu cpu);
}

/// <summary>
/// The run loop's side of translation: counts executions per block, translates a block once it is hot, and runs
/// the translation when there is budget for the whole block (else the interpreter runs it, op by op, so the
/// budget check stays at op granularity and virtual time is the same whichever path ran).
/// </summary>
internal sealed partial class X86Cpu
{
    private readonly BlockTranslator? _translator;

    /// <summary>The translator's counters; null when translation is off.</summary>
    internal JitStatistics? JitStatistics => _translator?.Statistics;

    /// <summary>Set after each block: whether it ran translated (for the lockstep harness).</summary>
    internal bool LastBlockTranslated;

    /// <summary>When set, told after every block (the lockstep harness); null on ordinary runs.</summary>
    internal IBlockObserver? BlockObserver { get; set; }

    private static BlockTranslator? CreateTranslator(JitSettings jit)
    {
        if (!jit.Active || !RuntimeFeature.IsDynamicCodeSupported)
        {
            return null;
        }

        return NewTranslator(jit);
    }

    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Only reached when RuntimeFeature.IsDynamicCodeSupported is true.")]
    private static BlockTranslator NewTranslator(JitSettings jit) => new(jit.HotThreshold, jit.Background);

    /// <summary>True when CS spans the whole address space (regions with several blocks assume it).</summary>
    internal bool CodeLimitFlat => S[CS].Limit == 0xFFFFFFFF;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool RunTranslated(CodeBlock block, long end)
    {
        var code = block.Translated;
        if (code is null)
        {
            if (++block.Heat != _translator!.HotThreshold)
            {
                return false;
            }

            code = Translate(block);
            if (code is null)
            {
                return false;
            }
        }

        if (end - Instructions < block.Count)
        {
            return false;
        }

        EndBlock = false;
        long before = Instructions;
        if (!code(this, end))
        {
            return false;
        }

        LastBlockTranslated = true;
        _translator!.Statistics.InstructionsTranslated += Instructions - before;
        return true;
    }

    /// <summary>
    /// The block is hot: its region (built here, on the CPU's thread, which owns the block cache) is compiled on the
    /// worker, or at once when translation is not in the background. Null until the translation exists.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "The translator exists only when RuntimeFeature.IsDynamicCodeSupported is true.")]
    private TranslatedCode? Translate(CodeBlock block)
    {
        var region = Region.Build(block, _code.FindDecoded);
        if (!_translator!.Background)
        {
            block.Translated = _translator.Translate(region, TranslationContext.Of(this));
            return block.Translated;
        }

        if (!TranslationWorker.TryQueue(_translator, region, TranslationContext.Of(this)))
        {
            block.Heat = 0; // asked again once it is as hot again
        }

        return null;
    }

    /// <summary>The exit of translated code after EndBlock: as RunBlock does, clear it and deliver a pending fault.</summary>
    internal void LeaveTranslatedBlock()
    {
        EndBlock = false;
        DeliverPendingFault();
    }
}

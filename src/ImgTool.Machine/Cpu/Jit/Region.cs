using ImgTool.Machine.Cpu.Decode;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// What one translation covers: a hot block (the head, where the run loop enters) and the blocks it reaches by
/// direct jumps (Jcc, JMP rel) on the same physical page, so that a loop becomes a loop in one method and its
/// registers stay in host registers across iterations. Only blocks already decoded are taken (they have run;
/// decoding a never-taken target would mark data bytes as code). Jumps between members skip the run loop, so
/// a block may jump to another member only if none of its ops can change what the run loop checks between
/// blocks (see <see cref="BoundaryNeutral"/>); its other jumps leave the method.
/// </summary>
internal sealed class Region
{
    /// <summary>Bounds on one method: RyuJIT's time grows faster than linearly with the IL's size.</summary>
    public const int MaxBlocks = 8;
    public const int MaxOps = 128;

    private Region(CodeBlock[] blocks, MicroOp[] ops, int[] firstOp, bool[] mayChain)
    {
        Blocks = blocks;
        Ops = ops;
        FirstOp = firstOp;
        MayChain = mayChain;
        for (int i = 0; i < blocks.Length && !HasInternalJump; i++)
        {
            HasInternalJump = mayChain[i] && DirectTargets(blocks[i]).Any(target => IndexOf(target) >= 0);
        }
    }

    /// <summary>Whether some member jumps to a member (itself included): then members share the register-cache state.</summary>
    public bool HasInternalJump { get; }

    /// <summary>The members, the head first.</summary>
    public CodeBlock[] Blocks { get; }

    public CodeBlock Head => Blocks[0];

    /// <summary>Every member's ops, one after the other (the translation's call-through handlers read them here).</summary>
    public MicroOp[] Ops { get; }

    /// <summary>Index in <see cref="Ops"/> of each member's first op.</summary>
    public int[] FirstOp { get; }

    /// <summary>Per member: whether its jumps to other members may stay in the method.</summary>
    public bool[] MayChain { get; }

    public int OpCount => Ops.Length;

    /// <summary>The member starting at this physical address, or -1.</summary>
    public int IndexOf(uint physical)
    {
        for (int i = 0; i < Blocks.Length; i++)
        {
            if (Blocks[i].Physical == physical)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// Collects the region of a hot block. <paramref name="decoded"/> finds an already decoded block at a physical
    /// address (null when there is none). Only 32-bit code gets more than its head: 16-bit targets wrap at 64 KiB.
    /// </summary>
    public static Region Build(CodeBlock head, Func<uint, CodeBlock?> decoded)
    {
        var blocks = new List<CodeBlock> { head };
        var mayChain = new List<bool> { head.Code32 && BoundaryNeutral(head) };
        int ops = head.Count;
        uint page = head.Physical >> PhysicalMemory.PageShift;
        for (int i = 0; i < blocks.Count; i++)
        {
            if (!mayChain[i])
            {
                continue;
            }

            foreach (uint target in DirectTargets(blocks[i]))
            {
                if (target >> PhysicalMemory.PageShift != page || blocks.Exists(b => b.Physical == target))
                {
                    continue;
                }

                if (decoded(target) is { Valid: true, Code32: true } member && blocks.Count < MaxBlocks && ops + member.Count <= MaxOps)
                {
                    blocks.Add(member);
                    mayChain.Add(BoundaryNeutral(member));
                    ops += member.Count;
                }
            }
        }

        var all = new MicroOp[ops];
        var first = new int[blocks.Count];
        int at = 0;
        for (int i = 0; i < blocks.Count; i++)
        {
            first[i] = at;
            blocks[i].Ops.AsSpan(0, blocks[i].Count).CopyTo(all.AsSpan(at));
            at += blocks[i].Count;
        }

        return new Region([.. blocks], all, first, [.. mayChain]);
    }

    /// <summary>The physical addresses a block ending in a 32-bit Jcc or JMP rel goes to (taken first); none otherwise.</summary>
    public static IEnumerable<uint> DirectTargets(CodeBlock block)
    {
        ref readonly MicroOp last = ref block.Ops[block.Count - 1];
        unsafe
        {
            nint handler = (nint)last.Handler;
            bool jcc = handler == KnownHandlers.Jcc;
            if ((!jcc && handler != KnownHandlers.JmpRel) || last.Size != 4)
            {
                return [];
            }

            uint end = block.Physical + (uint)block.LengthBytes;
            uint taken = end + last.Immediate;
            return jcc ? [taken, end] : [taken];
        }
    }

    /// <summary>
    /// True when no op of the block can change what the run loop looks at between blocks: whether an interrupt is
    /// deliverable (IF, the interrupt shadow, the PIC's state through port I/O, FERR#'s IRQ 13), HLT, the CPL,
    /// the code and stack segments, paging, or a stop. Translated ops and the pure computing handlers qualify;
    /// a fault or any other early end leaves the method through EndBlock whatever the block holds.
    /// </summary>
    public static unsafe bool BoundaryNeutral(CodeBlock block)
    {
        foreach (ref readonly MicroOp op in block.Ops.AsSpan(0, block.Count))
        {
            if (!NeutralHandlers.Contains((nint)op.Handler))
            {
                return false;
            }
        }

        return true;
    }

    private static readonly HashSet<nint> NeutralHandlers = BuildNeutralHandlers();

    private static unsafe HashSet<nint> BuildNeutralHandlers()
    {
        delegate*<X86Cpu, ref MicroOp, void>[] handlers =
        [
            &Handlers.AluOps.RR, &Handlers.AluOps.RM, &Handlers.AluOps.MR, &Handlers.AluOps.RI, &Handlers.AluOps.MI,
            &Handlers.AluOps.TestRR, &Handlers.AluOps.TestMR, &Handlers.AluOps.TestRI, &Handlers.AluOps.TestMI,
            &Handlers.AluOps.IncDecR, &Handlers.AluOps.IncDecM, &Handlers.AluOps.NegR, &Handlers.AluOps.NegM,
            &Handlers.AluOps.NotR, &Handlers.AluOps.NotM,
            &Handlers.BitOps.BitTestR, &Handlers.BitOps.BitTestM, &Handlers.BitOps.ScanRR, &Handlers.BitOps.ScanRM,
            &Handlers.MoveOps.MovRR, &Handlers.MoveOps.MovRM, &Handlers.MoveOps.MovMR, &Handlers.MoveOps.MovRI, &Handlers.MoveOps.MovMI,
            &Handlers.MoveOps.ExtendR, &Handlers.MoveOps.ExtendM, &Handlers.MoveOps.Lea, &Handlers.MoveOps.XchgRR, &Handlers.MoveOps.XchgMR,
            &Handlers.MoveOps.CmovRR, &Handlers.MoveOps.CmovRM, &Handlers.MoveOps.SetccR, &Handlers.MoveOps.SetccM, &Handlers.MoveOps.Bswap,
            &Handlers.MoveOps.ConvertAccumulator, &Handlers.MoveOps.ConvertToDx, &Handlers.MoveOps.Lahf, &Handlers.MoveOps.Sahf,
            &Handlers.MoveOps.FlagOp, &Handlers.MoveOps.Salc, &Handlers.MoveOps.Xlat, &Handlers.MoveOps.MovRSreg, &Handlers.MoveOps.MovMSreg,
            &Handlers.MulDivOps.MultiplyR, &Handlers.MulDivOps.MultiplyM, &Handlers.MulDivOps.MultiplyTruncatedR,
            &Handlers.MulDivOps.MultiplyTruncatedM, &Handlers.MulDivOps.DivideR, &Handlers.MulDivOps.DivideM,
            &Handlers.ShiftOps.ShiftR, &Handlers.ShiftOps.ShiftM, &Handlers.ShiftOps.DoubleShiftR, &Handlers.ShiftOps.DoubleShiftM,
            &Handlers.StringOps.Movs, &Handlers.StringOps.Stos, &Handlers.StringOps.Lods, &Handlers.StringOps.Cmps, &Handlers.StringOps.Scas,
            &Handlers.StackOps.PushR, &Handlers.StackOps.PushI, &Handlers.StackOps.PushM, &Handlers.StackOps.PopR, &Handlers.StackOps.PopM,
            &Handlers.StackOps.Pusha, &Handlers.StackOps.Popa, &Handlers.StackOps.Pushf,
            &Handlers.ControlOps.Jcc, &Handlers.ControlOps.JmpRel,
        ];
        var set = new HashSet<nint>();
        foreach (var handler in handlers)
        {
            set.Add((nint)handler);
        }

        return set;
    }
}

using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Which ops' status flags can be read before they are overwritten. Anything may read them except a few ops
/// that can neither fault nor look at them (register moves, LEA): a handler call, a memory access (a fault pushes
/// EFLAGS), a branch, the block's end (the next block). An op whose next flag-relevant op overwrites all six status
/// flags (ADD SUB AND OR XOR CMP TEST on registers, translated) need not record its flags at all.
/// </summary>
internal static unsafe class FlagLiveness
{
    private enum Effect
    {
        /// <summary>Neither reads nor writes the flags, cannot fault.</summary>
        None,

        /// <summary>Overwrites CF PF AF ZF SF OF without reading them, cannot fault.</summary>
        WritesAll,

        /// <summary>Anything else: may read the flags (or fault, which reads them all).</summary>
        MayRead,
    }

    /// <summary>For each op: whether the flags it records may be read (true for ops that record none, too).</summary>
    public static bool[] Analyse(ReadOnlySpan<MicroOp> ops)
    {
        var live = new bool[ops.Length];
        bool liveAfter = true; // the next block may read them
        for (int i = ops.Length - 1; i >= 0; i--)
        {
            live[i] = liveAfter;
            switch (Classify(in ops[i]))
            {
                case Effect.WritesAll:
                    liveAfter = false;
                    break;
                case Effect.MayRead:
                    liveAfter = true;
                    break;
            }
        }

        return live;
    }

    private static Effect Classify(in MicroOp op)
    {
        nint handler = (nint)op.Handler;
        if (handler == KnownHandlers.MovRR || handler == KnownHandlers.MovRI || handler == KnownHandlers.Lea || handler == KnownHandlers.ExtendR)
        {
            return Effect.None;
        }

        if ((handler == KnownHandlers.AluRR || handler == KnownHandlers.AluRI) && op.Kind is not (2 or 3))
        {
            return Effect.WritesAll;
        }

        if (handler == KnownHandlers.TestRR || handler == KnownHandlers.TestRI)
        {
            return Effect.WritesAll;
        }

        return Effect.MayRead;
    }
}

using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>
/// MOVS STOS LODS CMPS SCAS INS OUTS, with REP/REPE/REPNE (SDM vol. 2, REP). Each iteration retires as an
/// instruction. A repeated instruction runs at most <see cref="IterationsPerStep"/> iterations per step and then
/// restarts itself (EIP back on it), so interrupts and the instruction budget are honoured inside long copies;
/// a fault in an iteration leaves the registers as that iteration found them.
/// </summary>
internal static unsafe class StringOps
{
    private const int IterationsPerStep = 4096;

    private static uint AddressMask(ref MicroOp op) => op.Address32 ? 0xFFFFFFFF : 0xFFFF;

    private static uint Step(X86Cpu c, int size) => (c.SystemFlags & Flags.DF) != 0 ? (uint)-size : (uint)size;

    private static void Advance(X86Cpu c, int register, uint step, uint mask)
    {
        ref uint value = ref c.Gpr(register);
        value = (value & ~mask) | ((value + step) & mask);
    }

    /// <summary>Runs body per iteration; returns after the last or after a fault, re-queuing the instruction when cut short.</summary>
    private static void Repeat(X86Cpu c, ref MicroOp op, delegate*<X86Cpu, ref MicroOp, uint, uint, bool> body)
    {
        uint mask = AddressMask(ref op);
        uint step = Step(c, op.Size);
        if (op.Repeat == 0)
        {
            body(c, ref op, step, mask);
            return;
        }

        for (int n = 0; ; n++)
        {
            ref uint ecx = ref c.Gpr(X86Cpu.ECX);
            if ((ecx & mask) == 0)
            {
                return;
            }

            if (n == IterationsPerStep)
            {
                // Resume later: the instruction runs again from its first byte with the registers as they are.
                c.Eip = c.StartEip;
                c.EndBlock = true;
                return;
            }

            if (n > 0)
            {
                c.Instructions++;
            }

            bool stop = !body(c, ref op, step, mask);
            if (c.FaultPending)
            {
                return;
            }

            ecx = (ecx & ~mask) | ((ecx - 1) & mask);
            if (stop)
            {
                return;
            }
        }
    }

    public static void Movs(X86Cpu c, ref MicroOp op) => Repeat(c, ref op, &MovsOnce);

    private static bool MovsOnce(X86Cpu c, ref MicroOp op, uint step, uint mask)
    {
        uint value = c.Read(op.Segment, c.Gpr(X86Cpu.ESI) & mask, op.Size);
        if (c.FaultPending)
        {
            return false;
        }

        c.Write(X86Cpu.ES, c.Gpr(X86Cpu.EDI) & mask, op.Size, value);
        if (c.FaultPending)
        {
            return false;
        }

        Advance(c, X86Cpu.ESI, step, mask);
        Advance(c, X86Cpu.EDI, step, mask);
        return true;
    }

    public static void Stos(X86Cpu c, ref MicroOp op) => Repeat(c, ref op, &StosOnce);

    private static bool StosOnce(X86Cpu c, ref MicroOp op, uint step, uint mask)
    {
        c.Write(X86Cpu.ES, c.Gpr(X86Cpu.EDI) & mask, op.Size, c.Gpr(X86Cpu.EAX));
        if (c.FaultPending)
        {
            return false;
        }

        Advance(c, X86Cpu.EDI, step, mask);
        return true;
    }

    public static void Lods(X86Cpu c, ref MicroOp op) => Repeat(c, ref op, &LodsOnce);

    private static bool LodsOnce(X86Cpu c, ref MicroOp op, uint step, uint mask)
    {
        uint value = c.Read(op.Segment, c.Gpr(X86Cpu.ESI) & mask, op.Size);
        if (c.FaultPending)
        {
            return false;
        }

        c.WriteRegister(X86Cpu.EAX, op.Size, value);
        Advance(c, X86Cpu.ESI, step, mask);
        return true;
    }

    public static void Cmps(X86Cpu c, ref MicroOp op) => Repeat(c, ref op, &CmpsOnce);

    private static bool CmpsOnce(X86Cpu c, ref MicroOp op, uint step, uint mask)
    {
        uint a = c.Read(op.Segment, c.Gpr(X86Cpu.ESI) & mask, op.Size);
        uint b = c.Read(X86Cpu.ES, c.Gpr(X86Cpu.EDI) & mask, op.Size);
        if (c.FaultPending)
        {
            return false;
        }

        AluOps.Compute(c, 7, a, b, op.Size);
        Advance(c, X86Cpu.ESI, step, mask);
        Advance(c, X86Cpu.EDI, step, mask);
        return ContinueCompare(c, ref op);
    }

    public static void Scas(X86Cpu c, ref MicroOp op) => Repeat(c, ref op, &ScasOnce);

    private static bool ScasOnce(X86Cpu c, ref MicroOp op, uint step, uint mask)
    {
        uint b = c.Read(X86Cpu.ES, c.Gpr(X86Cpu.EDI) & mask, op.Size);
        if (c.FaultPending)
        {
            return false;
        }

        AluOps.Compute(c, 7, c.ReadRegister(X86Cpu.EAX, op.Size), b, op.Size);
        Advance(c, X86Cpu.EDI, step, mask);
        return ContinueCompare(c, ref op);
    }

    /// <summary>REPE goes on while equal, REPNE while not equal.</summary>
    private static bool ContinueCompare(X86Cpu c, ref MicroOp op) => op.Repeat == 1 ? c.ZeroFlag : !c.ZeroFlag;

    public static void Ins(X86Cpu c, ref MicroOp op)
    {
        if (!c.CheckIoPermission((ushort)c.Gpr(X86Cpu.EDX), op.Size))
        {
            return;
        }

        Repeat(c, ref op, &InsOnce);
    }

    private static bool InsOnce(X86Cpu c, ref MicroOp op, uint step, uint mask)
    {
        uint di = c.Gpr(X86Cpu.EDI) & mask;
        if (!c.ProbeWrite(X86Cpu.ES, di, op.Size))
        {
            return false;
        }

        c.Write(X86Cpu.ES, di, op.Size, c.Io.In((ushort)c.Gpr(X86Cpu.EDX), op.Size));
        Advance(c, X86Cpu.EDI, step, mask);
        return true;
    }

    public static void Outs(X86Cpu c, ref MicroOp op)
    {
        if (!c.CheckIoPermission((ushort)c.Gpr(X86Cpu.EDX), op.Size))
        {
            return;
        }

        Repeat(c, ref op, &OutsOnce);
    }

    private static bool OutsOnce(X86Cpu c, ref MicroOp op, uint step, uint mask)
    {
        uint value = c.Read(op.Segment, c.Gpr(X86Cpu.ESI) & mask, op.Size);
        if (c.FaultPending)
        {
            return false;
        }

        c.Io.Out((ushort)c.Gpr(X86Cpu.EDX), op.Size, value);
        Advance(c, X86Cpu.ESI, step, mask);
        return true;
    }
}

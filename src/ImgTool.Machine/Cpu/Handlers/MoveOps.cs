using System.Buffers.Binary;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>Data movement: MOV (incl. segment registers), MOVZX/MOVSX, LEA, XCHG, CMOVcc, SETcc, BSWAP, conversions, flag instructions.</summary>
internal static class MoveOps
{
    public static void MovRR(X86Cpu c, ref MicroOp op) => c.WriteRegister(op.Destination, op.Size, c.ReadRegister(op.Source, op.Size));

    public static void MovRM(X86Cpu c, ref MicroOp op)
    {
        uint value = c.Read(op.Segment, c.EffectiveAddress(ref op), op.Size);
        if (!c.FaultPending)
        {
            c.WriteRegister(op.Destination, op.Size, value);
        }
    }

    public static void MovMR(X86Cpu c, ref MicroOp op) => c.Write(op.Segment, c.EffectiveAddress(ref op), op.Size, c.ReadRegister(op.Source, op.Size));

    public static void MovRI(X86Cpu c, ref MicroOp op) => c.WriteRegister(op.Destination, op.Size, op.Immediate);

    public static void MovMI(X86Cpu c, ref MicroOp op) => c.Write(op.Segment, c.EffectiveAddress(ref op), op.Size, op.Immediate);

    /// <summary>MOVZX (Kind 0) / MOVSX (Kind 1) from a register of Size2 bytes.</summary>
    public static void ExtendR(X86Cpu c, ref MicroOp op) => c.WriteRegister(op.Destination, op.Size, Extend(c.ReadRegister(op.Source, op.Size2), op.Size2, op.Kind));

    public static void ExtendM(X86Cpu c, ref MicroOp op)
    {
        uint value = c.Read(op.Segment, c.EffectiveAddress(ref op), op.Size2);
        if (!c.FaultPending)
        {
            c.WriteRegister(op.Destination, op.Size, Extend(value, op.Size2, op.Kind));
        }
    }

    private static uint Extend(uint value, int sourceSize, int signed) => signed != 0 ? (uint)X86Cpu.SignExtend(value, sourceSize) : value;

    public static void Lea(X86Cpu c, ref MicroOp op) => c.WriteRegister(op.Destination, op.Size, c.EffectiveAddress(ref op));

    public static void XchgRR(X86Cpu c, ref MicroOp op)
    {
        uint a = c.ReadRegister(op.Destination, op.Size);
        c.WriteRegister(op.Destination, op.Size, c.ReadRegister(op.Source, op.Size));
        c.WriteRegister(op.Source, op.Size, a);
    }

    public static void XchgMR(X86Cpu c, ref MicroOp op)
    {
        uint offset = c.EffectiveAddress(ref op);
        uint memory = c.Read(op.Segment, offset, op.Size);
        if (c.FaultPending)
        {
            return;
        }

        c.Write(op.Segment, offset, op.Size, c.ReadRegister(op.Source, op.Size));
        if (!c.FaultPending)
        {
            c.WriteRegister(op.Source, op.Size, memory);
        }
    }

    public static void CmovRR(X86Cpu c, ref MicroOp op)
    {
        if (c.Condition(op.Kind))
        {
            c.WriteRegister(op.Destination, op.Size, c.ReadRegister(op.Source, op.Size));
        }
    }

    public static void CmovRM(X86Cpu c, ref MicroOp op)
    {
        // The source is read whatever the condition (and may fault), SDM vol. 2, CMOVcc.
        uint value = c.Read(op.Segment, c.EffectiveAddress(ref op), op.Size);
        if (!c.FaultPending && c.Condition(op.Kind))
        {
            c.WriteRegister(op.Destination, op.Size, value);
        }
    }

    public static void SetccR(X86Cpu c, ref MicroOp op) => c.WriteRegister(op.Destination, 1, c.Condition(op.Kind) ? 1u : 0);

    public static void SetccM(X86Cpu c, ref MicroOp op) => c.Write8(op.Segment, c.EffectiveAddress(ref op), c.Condition(op.Kind) ? 1u : 0);

    public static void Bswap(X86Cpu c, ref MicroOp op)
    {
        // BSWAP of a 16-bit register is undefined; a P6 zeroes it.
        uint value = c.Gpr(op.Destination);
        c.WriteRegister(op.Destination, op.Size, op.Size == 4 ? BinaryPrimitives.ReverseEndianness(value) : 0);
    }

    /// <summary>CBW (Size 2) and CWDE (Size 4): sign-extend the accumulator's lower half.</summary>
    public static void ConvertAccumulator(X86Cpu c, ref MicroOp op)
    {
        if (op.Size == 4)
        {
            c.Gpr(X86Cpu.EAX) = (uint)(short)c.Gpr(X86Cpu.EAX);
        }
        else
        {
            c.WriteRegister(X86Cpu.EAX, 2, (uint)(sbyte)c.Gpr(X86Cpu.EAX));
        }
    }

    /// <summary>CWD (Size 2) and CDQ (Size 4): the accumulator's sign into DX/EDX.</summary>
    public static void ConvertToDx(X86Cpu c, ref MicroOp op)
    {
        uint sign = op.Size == 4 ? c.Gpr(X86Cpu.EAX) >> 31 : (c.Gpr(X86Cpu.EAX) >> 15) & 1;
        c.WriteRegister(X86Cpu.EDX, op.Size, sign != 0 ? 0xFFFFFFFF : 0);
    }

    public static void Lahf(X86Cpu c, ref MicroOp op) => c.WriteRegister(4, 1, (c.Eflags & 0xD5) | Flags.Reserved1);

    public static void Sahf(X86Cpu c, ref MicroOp op)
    {
        uint mask = Flags.SF | Flags.ZF | Flags.AF | Flags.PF | Flags.CF;
        c.Eflags = (c.Eflags & ~mask) | ((c.Gpr(X86Cpu.EAX) >> 8) & mask);
    }

    /// <summary>CLC STC CMC CLD STD by Kind.</summary>
    public static void FlagOp(X86Cpu c, ref MicroOp op)
    {
        switch (op.Kind)
        {
            case 0: c.SetFlag(Flags.CF, false); break;
            case 1: c.SetFlag(Flags.CF, true); break;
            case 2: c.SetFlag(Flags.CF, !c.CarryFlag); break;
            case 3: c.SetSystemFlag(Flags.DF, false); break;
            default: c.SetSystemFlag(Flags.DF, true); break;
        }
    }

    public static void Cli(X86Cpu c, ref MicroOp op)
    {
        if (c.IoPrivileged())
        {
            c.SetSystemFlag(Flags.IF, false);
        }
    }

    public static void Sti(X86Cpu c, ref MicroOp op)
    {
        if (!c.IoPrivileged())
        {
            return;
        }

        if ((c.SystemFlags & Flags.IF) == 0)
        {
            c.InterruptShadow = true;
        }

        c.SetSystemFlag(Flags.IF, true);
    }

    public static void Salc(X86Cpu c, ref MicroOp op) => c.WriteRegister(X86Cpu.EAX, 1, c.CarryFlag ? 0xFFu : 0);

    public static void Xlat(X86Cpu c, ref MicroOp op)
    {
        // Iced gives XLAT the memory operand [(E)BX + AL]: AL is not an addressing register, so add it here.
        uint offset = c.Gpr(X86Cpu.EBX) + (c.Gpr(X86Cpu.EAX) & 0xFF);
        uint value = c.Read8(op.Segment, op.Address32 ? offset : offset & 0xFFFF);
        if (!c.FaultPending)
        {
            c.WriteRegister(X86Cpu.EAX, 1, value);
        }
    }

    public static void MovSregR(X86Cpu c, ref MicroOp op) => LoadSreg(c, op.Destination, (ushort)c.Gpr(op.Source));

    public static void MovSregM(X86Cpu c, ref MicroOp op)
    {
        uint selector = c.Read16(op.Segment, c.EffectiveAddress(ref op));
        if (!c.FaultPending)
        {
            LoadSreg(c, op.Destination, (ushort)selector);
        }
    }

    private static void LoadSreg(X86Cpu c, int segment, ushort selector)
    {
        if (c.LoadSegment(segment, selector) && segment == X86Cpu.SS)
        {
            c.InterruptShadow = true;
        }
    }

    /// <summary>MOV r, sreg: a 32-bit destination is zero-extended on a P6.</summary>
    public static void MovRSreg(X86Cpu c, ref MicroOp op) => c.WriteRegister(op.Destination, op.Size, c.S[op.Source].Selector);

    public static void MovMSreg(X86Cpu c, ref MicroOp op) => c.Write16(op.Segment, c.EffectiveAddress(ref op), c.S[op.Source].Selector);

    /// <summary>LDS LES LSS LFS LGS (segment in Kind): offset then selector from memory.</summary>
    public static void LoadFarPointer(X86Cpu c, ref MicroOp op)
    {
        uint address = c.EffectiveAddress(ref op);
        uint offset = c.Read(op.Segment, address, op.Size);
        uint selector = c.Read16(op.Segment, address + op.Size);
        if (c.FaultPending)
        {
            return;
        }

        if (c.LoadSegment(op.Kind, (ushort)selector))
        {
            c.WriteRegister(op.Destination, op.Size, offset);
            if (op.Kind == X86Cpu.SS)
            {
                c.InterruptShadow = true;
            }
        }
    }
}

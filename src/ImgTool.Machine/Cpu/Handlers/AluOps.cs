using System.Runtime.CompilerServices;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>ADD OR ADC SBB AND SUB XOR CMP (opcode order in <see cref="MicroOp.Kind"/>), TEST, INC, DEC, NEG, NOT.</summary>
internal static class AluOps
{
    private const int Cmp = 7;

    /// <summary>Computes an ALU operation and records its flags lazily (SDM vol. 2 for each instruction).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint Compute(X86Cpu c, int operation, uint a, uint b, int size)
    {
        uint result;
        switch (operation)
        {
            case 0:
                result = a + b;
                c.SetLazy(FlagOp.Add, a, b, result, size);
                break;
            case 1:
                result = a | b;
                c.SetLazy(FlagOp.Logic, a, b, result, size);
                break;
            case 2:
                if (c.CarryFlag)
                {
                    result = a + b + 1;
                    c.SetLazy(FlagOp.AddCarry, a, b, result, size);
                }
                else
                {
                    result = a + b;
                    c.SetLazy(FlagOp.Add, a, b, result, size);
                }

                break;
            case 3:
                if (c.CarryFlag)
                {
                    result = a - b - 1;
                    c.SetLazy(FlagOp.SubBorrow, a, b, result, size);
                }
                else
                {
                    result = a - b;
                    c.SetLazy(FlagOp.Sub, a, b, result, size);
                }

                break;
            case 4:
                result = a & b;
                c.SetLazy(FlagOp.Logic, a, b, result, size);
                break;
            case 6:
                result = a ^ b;
                c.SetLazy(FlagOp.Logic, a, b, result, size);
                break;
            default:
                result = a - b;
                c.SetLazy(FlagOp.Sub, a, b, result, size);
                break;
        }

        return result;
    }

    public static void RR(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint result = Compute(c, op.Kind, c.ReadRegister(op.Destination, size), c.ReadRegister(op.Source, size), size);
        if (op.Kind != Cmp)
        {
            c.WriteRegister(op.Destination, size, result);
        }
    }

    public static void RM(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint b = c.Read(op.Segment, c.EffectiveAddress(ref op), size);
        if (c.FaultPending)
        {
            return;
        }

        uint result = Compute(c, op.Kind, c.ReadRegister(op.Destination, size), b, size);
        if (op.Kind != Cmp)
        {
            c.WriteRegister(op.Destination, size, result);
        }
    }

    public static void MR(X86Cpu c, ref MicroOp op) => MemoryOperation(c, ref op, c.ReadRegister(op.Source, op.Size));

    public static void RI(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint result = Compute(c, op.Kind, c.ReadRegister(op.Destination, size), op.Immediate, size);
        if (op.Kind != Cmp)
        {
            c.WriteRegister(op.Destination, size, result);
        }
    }

    public static void MI(X86Cpu c, ref MicroOp op) => MemoryOperation(c, ref op, op.Immediate);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MemoryOperation(X86Cpu c, ref MicroOp op, uint b)
    {
        int size = op.Size;
        uint offset = c.EffectiveAddress(ref op);
        uint a = c.Read(op.Segment, offset, size);
        if (c.FaultPending)
        {
            return;
        }

        if (op.Kind == Cmp)
        {
            Compute(c, Cmp, a, b, size);
            return;
        }

        // The write may fault: compute the result without touching the flags until it has succeeded.
        bool carry = c.CarryFlag;
        uint result = Preview(op.Kind, a, b, carry);
        c.Write(op.Segment, offset, size, result);
        if (!c.FaultPending)
        {
            Record(c, op.Kind, a, b, result, carry, size);
        }
    }

    private static uint Preview(int operation, uint a, uint b, bool carry) => operation switch
    {
        0 => a + b,
        1 => a | b,
        2 => a + b + (carry ? 1u : 0),
        3 => a - b - (carry ? 1u : 0),
        4 => a & b,
        5 => a - b,
        _ => a ^ b,
    };

    private static void Record(X86Cpu c, int operation, uint a, uint b, uint result, bool carry, int size)
    {
        var kind = operation switch
        {
            0 => FlagOp.Add,
            2 => carry ? FlagOp.AddCarry : FlagOp.Add,
            3 => carry ? FlagOp.SubBorrow : FlagOp.Sub,
            5 => FlagOp.Sub,
            _ => FlagOp.Logic,
        };
        c.SetLazy(kind, a, b, result, size);
    }

    public static void TestRR(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        c.SetLazy(FlagOp.Logic, 0, 0, c.ReadRegister(op.Destination, size) & c.ReadRegister(op.Source, size), size);
    }

    public static void TestMR(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint a = c.Read(op.Segment, c.EffectiveAddress(ref op), size);
        if (!c.FaultPending)
        {
            c.SetLazy(FlagOp.Logic, 0, 0, a & c.ReadRegister(op.Source, size), size);
        }
    }

    public static void TestRI(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        c.SetLazy(FlagOp.Logic, 0, 0, c.ReadRegister(op.Destination, size) & op.Immediate, size);
    }

    public static void TestMI(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint a = c.Read(op.Segment, c.EffectiveAddress(ref op), size);
        if (!c.FaultPending)
        {
            c.SetLazy(FlagOp.Logic, 0, 0, a & op.Immediate, size);
        }
    }

    public static void IncDecR(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint a = c.ReadRegister(op.Destination, size);
        bool decrement = op.Kind != 0;
        uint result = decrement ? a - 1 : a + 1;
        c.SetLazyIncDec(decrement, a, result, size);
        c.WriteRegister(op.Destination, size, result);
    }

    public static void IncDecM(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint offset = c.EffectiveAddress(ref op);
        uint a = c.Read(op.Segment, offset, size);
        if (c.FaultPending)
        {
            return;
        }

        bool decrement = op.Kind != 0;
        uint result = decrement ? a - 1 : a + 1;
        c.Write(op.Segment, offset, size, result);
        if (!c.FaultPending)
        {
            c.SetLazyIncDec(decrement, a, result, size);
        }
    }

    public static void NegR(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint b = c.ReadRegister(op.Destination, size);
        uint result = 0 - b;
        c.SetLazy(FlagOp.Sub, 0, b, result, size);
        c.WriteRegister(op.Destination, size, result);
    }

    public static void NegM(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint offset = c.EffectiveAddress(ref op);
        uint b = c.Read(op.Segment, offset, size);
        if (c.FaultPending)
        {
            return;
        }

        uint result = 0 - b;
        c.Write(op.Segment, offset, size, result);
        if (!c.FaultPending)
        {
            c.SetLazy(FlagOp.Sub, 0, b, result, size);
        }
    }

    public static void NotR(X86Cpu c, ref MicroOp op) => c.WriteRegister(op.Destination, op.Size, ~c.ReadRegister(op.Destination, op.Size));

    public static void NotM(X86Cpu c, ref MicroOp op)
    {
        uint offset = c.EffectiveAddress(ref op);
        uint a = c.Read(op.Segment, offset, op.Size);
        if (!c.FaultPending)
        {
            c.Write(op.Segment, offset, op.Size, ~a);
        }
    }
}

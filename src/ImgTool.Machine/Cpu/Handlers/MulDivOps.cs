using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>MUL/IMUL (Kind 0/1), two- and three-operand IMUL, DIV/IDIV (Kind 0/1), and the BCD adjustments.</summary>
internal static class MulDivOps
{
    public static void MultiplyR(X86Cpu c, ref MicroOp op) => Multiply(c, op.Kind != 0, c.ReadRegister(op.Destination, op.Size), op.Size);

    public static void MultiplyM(X86Cpu c, ref MicroOp op)
    {
        uint source = c.Read(op.Segment, c.EffectiveAddress(ref op), op.Size);
        if (!c.FaultPending)
        {
            Multiply(c, op.Kind != 0, source, op.Size);
        }
    }

    private static void Multiply(X86Cpu c, bool signed, uint source, int size)
    {
        bool overflow;
        uint low;
        uint eax = c.Gpr(X86Cpu.EAX);
        switch (size)
        {
            case 1:
            {
                uint al = eax & 0xFF;
                uint product = signed ? (uint)((sbyte)al * (sbyte)source) & 0xFFFF : al * (source & 0xFF);
                c.WriteRegister(X86Cpu.EAX, 2, product);
                overflow = signed ? (short)product != (sbyte)product : (product & 0xFF00) != 0;
                low = product & 0xFF;
                break;
            }

            case 2:
            {
                uint ax = eax & 0xFFFF;
                uint product = signed ? (uint)((short)ax * (short)source) : ax * (source & 0xFFFF);
                c.WriteRegister(X86Cpu.EAX, 2, product);
                c.WriteRegister(X86Cpu.EDX, 2, product >> 16);
                overflow = signed ? (int)product != (short)product : (product & 0xFFFF0000) != 0;
                low = product & 0xFFFF;
                break;
            }

            default:
            {
                ulong product = signed ? (ulong)((long)(int)eax * (int)source) : (ulong)eax * source;
                c.Gpr(X86Cpu.EAX) = (uint)product;
                c.Gpr(X86Cpu.EDX) = (uint)(product >> 32);
                overflow = signed ? (long)product != (int)product : (product >> 32) != 0;
                low = (uint)product;
                break;
            }
        }

        // SF, ZF, AF and PF are undefined; a P6 sets SF/ZF/PF from the low half and clears AF.
        c.SetResultFlags(low, size, overflow ? Flags.CF | Flags.OF : 0);
    }

    public static void MultiplyTruncatedR(X86Cpu c, ref MicroOp op) => MultiplyTruncated(c, ref op, c.ReadRegister(op.Source, op.Size));

    public static void MultiplyTruncatedM(X86Cpu c, ref MicroOp op)
    {
        uint source = c.Read(op.Segment, c.EffectiveAddress(ref op), op.Size);
        if (!c.FaultPending)
        {
            MultiplyTruncated(c, ref op, source);
        }
    }

    /// <summary>IMUL r, r/m (Kind 0: multiplies the destination) and IMUL r, r/m, imm (Kind 1: the immediate).</summary>
    private static void MultiplyTruncated(X86Cpu c, ref MicroOp op, uint source)
    {
        int size = op.Size;
        uint result = TruncatedProduct(c, source, op.Kind != 0 ? op.Immediate : c.ReadRegister(op.Destination, size), size);
        c.WriteRegister(op.Destination, size, result);
    }

    /// <summary>The product truncated to the operand size, with the flags IMUL sets (translated code calls it with registers in locals).</summary>
    internal static uint TruncatedProduct(X86Cpu c, uint source, uint other, int size)
    {
        long product = (long)X86Cpu.SignExtend(source, size) * X86Cpu.SignExtend(other, size);
        uint result = (uint)product & X86Cpu.SizeMask(size);
        bool overflow = product != X86Cpu.SignExtend(result, size);
        c.SetResultFlags(result, size, overflow ? Flags.CF | Flags.OF : 0);
        return result;
    }

    public static void DivideR(X86Cpu c, ref MicroOp op) => Divide(c, op.Kind != 0, c.ReadRegister(op.Destination, op.Size), op.Size);

    public static void DivideM(X86Cpu c, ref MicroOp op)
    {
        uint divisor = c.Read(op.Segment, c.EffectiveAddress(ref op), op.Size);
        if (!c.FaultPending)
        {
            Divide(c, op.Kind != 0, divisor, op.Size);
        }
    }

    private static void Divide(X86Cpu c, bool signed, uint divisor, int size)
    {
        divisor &= X86Cpu.SizeMask(size);
        if (divisor == 0)
        {
            c.RaiseFault(Vector.DE);
            return;
        }

        uint eax = c.Gpr(X86Cpu.EAX), edx = c.Gpr(X86Cpu.EDX);
        switch (size)
        {
            case 1:
            {
                uint dividend = eax & 0xFFFF;
                if (signed)
                {
                    int q = (short)dividend / (sbyte)divisor;
                    int r = (short)dividend % (sbyte)divisor;
                    if (q is > 127 or < -128)
                    {
                        c.RaiseFault(Vector.DE);
                        return;
                    }

                    c.WriteRegister(X86Cpu.EAX, 2, ((uint)(r & 0xFF) << 8) | (uint)(q & 0xFF));
                }
                else
                {
                    uint q = dividend / divisor;
                    if (q > 0xFF)
                    {
                        c.RaiseFault(Vector.DE);
                        return;
                    }

                    c.WriteRegister(X86Cpu.EAX, 2, ((dividend % divisor) << 8) | q);
                }

                break;
            }

            case 2:
            {
                uint dividend = ((edx & 0xFFFF) << 16) | (eax & 0xFFFF);
                if (signed)
                {
                    if ((int)dividend == int.MinValue && (short)divisor == -1)
                    {
                        c.RaiseFault(Vector.DE);
                        return;
                    }

                    int q = (int)dividend / (short)divisor;
                    int r = (int)dividend % (short)divisor;
                    if (q is > 32767 or < -32768)
                    {
                        c.RaiseFault(Vector.DE);
                        return;
                    }

                    c.WriteRegister(X86Cpu.EAX, 2, (uint)q);
                    c.WriteRegister(X86Cpu.EDX, 2, (uint)r);
                }
                else
                {
                    uint q = dividend / divisor;
                    if (q > 0xFFFF)
                    {
                        c.RaiseFault(Vector.DE);
                        return;
                    }

                    c.WriteRegister(X86Cpu.EAX, 2, q);
                    c.WriteRegister(X86Cpu.EDX, 2, dividend % divisor);
                }

                break;
            }

            default:
            {
                ulong dividend = ((ulong)edx << 32) | eax;
                if (signed)
                {
                    long d = (long)dividend;
                    int s = (int)divisor;
                    if (d == long.MinValue && s == -1)
                    {
                        c.RaiseFault(Vector.DE);
                        return;
                    }

                    long q = d / s;
                    if (q is > int.MaxValue or < int.MinValue)
                    {
                        c.RaiseFault(Vector.DE);
                        return;
                    }

                    c.Gpr(X86Cpu.EAX) = (uint)q;
                    c.Gpr(X86Cpu.EDX) = (uint)(d % s);
                }
                else
                {
                    ulong q = dividend / divisor;
                    if (q > uint.MaxValue)
                    {
                        c.RaiseFault(Vector.DE);
                        return;
                    }

                    c.Gpr(X86Cpu.EAX) = (uint)q;
                    c.Gpr(X86Cpu.EDX) = (uint)(dividend % divisor);
                }

                break;
            }
        }
    }

    /// <summary>DAA (Kind 0) / DAS (Kind 1), after the SDM's pseudo-code.</summary>
    public static void DecimalAdjust(X86Cpu c, ref MicroOp op)
    {
        bool subtract = op.Kind != 0;
        uint flags = c.Eflags;
        uint al = c.Gpr(X86Cpu.EAX) & 0xFF;
        bool carry = (flags & Flags.CF) != 0;
        uint result = al;
        bool newCarry = false;
        bool auxiliary = false;
        if ((al & 0xF) > 9 || (flags & Flags.AF) != 0)
        {
            result = subtract ? (al - 6) & 0xFF : (al + 6) & 0xFF;
            newCarry = carry || (subtract ? al < 6 : al + 6 > 0xFF);
            auxiliary = true;
        }

        if (al > 0x99 || carry)
        {
            result = subtract ? (result - 0x60) & 0xFF : (result + 0x60) & 0xFF;
            newCarry = true;
        }

        c.WriteRegister(X86Cpu.EAX, 1, result);
        c.SetResultFlags(result, 1, (newCarry ? Flags.CF : 0) | (auxiliary ? Flags.AF : 0) | (flags & Flags.OF));
    }

    /// <summary>AAA (Kind 0) / AAS (Kind 1): AX adjusted by 0x106 as a word (286 and later).</summary>
    public static void AsciiAdjust(X86Cpu c, ref MicroOp op)
    {
        uint flags = c.Eflags;
        uint ax = c.Gpr(X86Cpu.EAX) & 0xFFFF;
        if ((ax & 0xF) > 9 || (flags & Flags.AF) != 0)
        {
            ax = op.Kind != 0 ? ax - 6 - 0x100 : ax + 0x106;
            flags |= Flags.AF | Flags.CF;
        }
        else
        {
            flags &= ~(Flags.AF | Flags.CF);
        }

        c.Eflags = flags;
        c.WriteRegister(X86Cpu.EAX, 2, ax & 0xFF0F);
    }

    public static void Aam(X86Cpu c, ref MicroOp op)
    {
        uint divisor = op.Immediate & 0xFF;
        if (divisor == 0)
        {
            c.RaiseFault(Vector.DE);
            return;
        }

        uint al = c.Gpr(X86Cpu.EAX) & 0xFF;
        c.WriteRegister(X86Cpu.EAX, 2, ((al / divisor) << 8) | (al % divisor));
        c.SetResultFlags(al % divisor, 1, 0);
    }

    public static void Aad(X86Cpu c, ref MicroOp op)
    {
        uint eax = c.Gpr(X86Cpu.EAX);
        uint al = eax & 0xFF;
        uint ah = (eax >> 8) & 0xFF;
        uint b = (ah * (op.Immediate & 0xFF)) & 0xFF;
        uint result = AluOps.Compute(c, 0, al, b, 1) & 0xFF;
        c.WriteRegister(X86Cpu.EAX, 2, result);
    }
}

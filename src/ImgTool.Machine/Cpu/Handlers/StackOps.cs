using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>PUSH, POP (registers, memory, immediates, segment registers), PUSHA/POPA, PUSHF/POPF.</summary>
internal static class StackOps
{
    public static void PushR(X86Cpu c, ref MicroOp op) => c.Push(c.ReadRegister(op.Source, op.Size), op.Size);

    public static void PushI(X86Cpu c, ref MicroOp op) => c.Push(op.Immediate, op.Size);

    public static void PushM(X86Cpu c, ref MicroOp op)
    {
        uint value = c.Read(op.Segment, c.EffectiveAddress(ref op), op.Size);
        if (!c.FaultPending)
        {
            c.Push(value, op.Size);
        }
    }

    public static void PushSreg(X86Cpu c, ref MicroOp op)
    {
        uint value = c.S[op.Source].Selector;
        if (op.Size == 4)
        {
            // A P6 writes only the 16-bit selector into the 32-bit slot (SDM vol. 2, PUSH).
            uint sp = (c.StackPointer - 4) & (c.Stack32 ? 0xFFFFFFFF : 0xFFFF);
            if (c.ProbeWrite(X86Cpu.SS, sp, 4))
            {
                c.Write16(X86Cpu.SS, sp, value);
                c.SetStackPointer(sp);
            }

            return;
        }

        c.Push(value, 2);
    }

    public static void PopR(X86Cpu c, ref MicroOp op)
    {
        if (c.Pop(op.Size, out uint value))
        {
            c.WriteRegister(op.Destination, op.Size, value);
        }
    }

    public static void PopM(X86Cpu c, ref MicroOp op)
    {
        if (!c.PeekStack(0, op.Size, out uint value))
        {
            return;
        }

        // With ESP as base (Kind 1) the address is computed after the increment, else before.
        uint savedEsp = c.Gpr(X86Cpu.ESP);
        uint address;
        if (op.Kind == 1)
        {
            c.DropStack(op.Size);
            address = c.EffectiveAddress(ref op);
        }
        else
        {
            address = c.EffectiveAddress(ref op);
            c.DropStack(op.Size);
        }

        c.Write(op.Segment, address, op.Size, value);
        if (c.FaultPending)
        {
            c.Gpr(X86Cpu.ESP) = savedEsp;
        }
    }

    public static void PopSreg(X86Cpu c, ref MicroOp op)
    {
        if (!c.PeekStack(0, op.Size, out uint value))
        {
            return;
        }

        if (c.LoadSegment(op.Destination, (ushort)value))
        {
            c.DropStack(op.Size);
            if (op.Destination == X86Cpu.SS)
            {
                c.InterruptShadow = true;
            }
        }
    }

    public static void Pusha(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint mask = c.Stack32 ? 0xFFFFFFFF : 0xFFFF;
        uint sp = c.StackPointer;
        uint bottom = (sp - (uint)(8 * size)) & mask;
        if (!c.ProbeWrite(X86Cpu.SS, bottom, size) || !c.ProbeWrite(X86Cpu.SS, (sp - (uint)size) & mask, size))
        {
            return;
        }

        uint original = c.Gpr(X86Cpu.ESP);
        for (int r = 0; r < 8; r++)
        {
            c.Push(r == X86Cpu.ESP ? original : c.Gpr(r), size);
        }
    }

    public static void Popa(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        Span<uint> values = stackalloc uint[8];
        for (int r = 7; r >= 0; r--)
        {
            if (!c.PeekStack((uint)((7 - r) * size), size, out values[r]))
            {
                return;
            }
        }

        c.DropStack((uint)(8 * size));
        for (int r = 0; r < 8; r++)
        {
            if (r != X86Cpu.ESP)
            {
                c.WriteRegister(r, size, values[r]);
            }
        }
    }

    public static void Pushf(X86Cpu c, ref MicroOp op)
    {
        if ((c.SystemFlags & Flags.VM) != 0 && c.Iopl < 3)
        {
            c.RaiseFault(Vector.GP, 0);
            return;
        }

        // RF and VM are pushed as 0 (SDM vol. 2, PUSHF).
        c.Push(c.Eflags & ~(Flags.RF | Flags.VM), op.Size);
    }

    public static void Popf(X86Cpu c, ref MicroOp op)
    {
        if ((c.SystemFlags & Flags.VM) != 0 && c.Iopl < 3)
        {
            c.RaiseFault(Vector.GP, 0);
            return;
        }

        if (c.Pop(op.Size, out uint value))
        {
            c.WriteFlags(value, op.Size);
        }
    }
}

using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>
/// Control transfers: Jcc, JMP, CALL, RET, IRET (near, far, and to another privilege level in protected mode,
/// SDM vol. 2 for each), LOOP/JCXZ, INT/INTO, HLT, BOUND, ENTER, LEAVE. Relative targets are displacements
/// from the next instruction (EIP has already moved past it), wrapped to 16 bits in 16-bit code.
/// </summary>
internal static class ControlOps
{
    private static void Branch(X86Cpu c, ref MicroOp op)
    {
        uint target = c.Eip + op.Immediate;
        c.Eip = op.Size == 2 || !c.Code32 ? target & 0xFFFF : target;
    }

    public static void Jcc(X86Cpu c, ref MicroOp op)
    {
        if (c.Condition(op.Kind))
        {
            Branch(c, ref op);
        }
    }

    public static void JmpRel(X86Cpu c, ref MicroOp op) => Branch(c, ref op);

    public static void Jcxz(X86Cpu c, ref MicroOp op)
    {
        if ((op.Size2 == 2 ? c.Gpr(X86Cpu.ECX) & 0xFFFF : c.Gpr(X86Cpu.ECX)) == 0)
        {
            Branch(c, ref op);
        }
    }

    /// <summary>LOOP (Kind 0), LOOPE (1), LOOPNE (2) with CX or ECX as counter (Size2).</summary>
    public static void Loop(X86Cpu c, ref MicroOp op)
    {
        uint count;
        ref uint ecx = ref c.Gpr(X86Cpu.ECX);
        if (op.Size2 == 2)
        {
            count = (ecx - 1) & 0xFFFF;
            ecx = (ecx & 0xFFFF0000) | count;
        }
        else
        {
            count = --ecx;
        }

        bool taken = count != 0 && op.Kind switch
        {
            1 => c.ZeroFlag,
            2 => !c.ZeroFlag,
            _ => true,
        };
        if (taken)
        {
            Branch(c, ref op);
        }
    }

    public static void JmpR(X86Cpu c, ref MicroOp op) => c.Eip = c.ReadRegister(op.Source, op.Size);

    public static void JmpM(X86Cpu c, ref MicroOp op)
    {
        uint target = c.Read(op.Segment, c.EffectiveAddress(ref op), op.Size);
        if (!c.FaultPending)
        {
            c.Eip = target;
        }
    }

    public static void JmpFar(X86Cpu c, ref MicroOp op) => FarJump(c, op.Immediate2, op.Immediate);

    public static void JmpFarM(X86Cpu c, ref MicroOp op)
    {
        uint address = c.EffectiveAddress(ref op);
        uint offset = c.Read(op.Segment, address, op.Size);
        uint selector = c.Read16(op.Segment, address + op.Size);
        if (!c.FaultPending)
        {
            FarJump(c, (ushort)selector, offset);
        }
    }

    private static void FarJump(X86Cpu c, ushort selector, uint offset)
    {
        if (!c.ProtectedMode || (c.SystemFlags & Flags.VM) != 0)
        {
            c.LoadRealSegment(X86Cpu.CS, selector);
            c.Eip = offset;
            return;
        }

        if (!c.CheckCodeSegment(selector, c.Cpl, isReturn: false, out var cs))
        {
            return;
        }

        if (offset > cs.Limit)
        {
            c.RaiseFault(Vector.GP, 0);
            return;
        }

        c.SetSegment(X86Cpu.CS, cs);
        c.Eip = offset;
    }

    public static void CallRel(X86Cpu c, ref MicroOp op)
    {
        if (c.Push(c.Eip, op.Size))
        {
            Branch(c, ref op);
        }
    }

    public static void CallR(X86Cpu c, ref MicroOp op)
    {
        uint target = c.ReadRegister(op.Source, op.Size);
        if (c.Push(c.Eip, op.Size))
        {
            c.Eip = target;
        }
    }

    public static void CallM(X86Cpu c, ref MicroOp op)
    {
        uint target = c.Read(op.Segment, c.EffectiveAddress(ref op), op.Size);
        if (!c.FaultPending && c.Push(c.Eip, op.Size))
        {
            c.Eip = target;
        }
    }

    public static void CallFar(X86Cpu c, ref MicroOp op) => FarCall(c, op.Immediate2, op.Immediate, op.Size);

    public static void CallFarM(X86Cpu c, ref MicroOp op)
    {
        uint address = c.EffectiveAddress(ref op);
        uint offset = c.Read(op.Segment, address, op.Size);
        uint selector = c.Read16(op.Segment, address + op.Size);
        if (!c.FaultPending)
        {
            FarCall(c, (ushort)selector, offset, op.Size);
        }
    }

    private static void FarCall(X86Cpu c, ushort selector, uint offset, int size)
    {
        uint mask = c.Stack32 ? 0xFFFFFFFF : 0xFFFF;
        uint bottom = (c.StackPointer - (uint)(2 * size)) & mask;
        if (!c.ProbeWrite(X86Cpu.SS, bottom, size) || !c.ProbeWrite(X86Cpu.SS, (bottom + (uint)size) & mask, size))
        {
            return;
        }

        ushort oldCs = c.S[X86Cpu.CS].Selector;
        uint returnEip = c.Eip;
        if (!c.ProtectedMode || (c.SystemFlags & Flags.VM) != 0)
        {
            c.Push(oldCs, size);
            c.Push(returnEip, size);
            c.LoadRealSegment(X86Cpu.CS, selector);
            c.Eip = size == 2 ? offset & 0xFFFF : offset;
            return;
        }

        if (!c.CheckCodeSegment(selector, c.Cpl, isReturn: false, out var cs))
        {
            return;
        }

        if (offset > cs.Limit)
        {
            c.RaiseFault(Vector.GP, 0);
            return;
        }

        c.Push(oldCs, size);
        c.Push(returnEip, size);
        c.SetSegment(X86Cpu.CS, cs);
        c.Eip = size == 2 ? offset & 0xFFFF : offset;
    }

    public static void RetNear(X86Cpu c, ref MicroOp op)
    {
        if (c.Pop(op.Size, out uint target))
        {
            c.Eip = op.Size == 2 ? target & 0xFFFF : target;
            c.DropStack(op.Immediate2);
        }
    }

    public static void RetFar(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        if (!c.PeekStack(0, size, out uint offset) || !c.PeekStack((uint)size, size, out uint selectorValue))
        {
            return;
        }

        ushort selector = (ushort)selectorValue;
        if (!c.ProtectedMode || (c.SystemFlags & Flags.VM) != 0)
        {
            c.LoadRealSegment(X86Cpu.CS, selector);
            c.DropStack((uint)(2 * size) + op.Immediate2);
            c.Eip = size == 2 ? offset & 0xFFFF : offset;
            return;
        }

        int rpl = selector & Selector.RplMask;
        if (!c.CheckCodeSegment(selector, rpl, isReturn: true, out var cs))
        {
            return;
        }

        if (rpl == c.Cpl)
        {
            c.SetSegment(X86Cpu.CS, cs);
            c.DropStack((uint)(2 * size) + op.Immediate2);
            c.Eip = size == 2 ? offset & 0xFFFF : offset;
            return;
        }

        // To an outer level: the outer stack pointer follows the parameters RET imm16 releases.
        uint depth = (uint)(2 * size) + op.Immediate2;
        if (!c.PeekStack(depth, size, out uint newEsp) || !c.PeekStack(depth + (uint)size, size, out uint newSsValue))
        {
            return;
        }

        if (!ReturnToOuterLevel(c, cs, rpl, (ushort)newSsValue, newEsp + op.Immediate2, size))
        {
            return;
        }

        c.Eip = size == 2 ? offset & 0xFFFF : offset;
    }

    /// <summary>Loads the outer level's SS:ESP and CS for a far RET or IRET to it, then drops segments it may not use.</summary>
    private static bool ReturnToOuterLevel(X86Cpu c, SegmentRegister cs, int rpl, ushort ssSelector, uint esp, int size)
    {
        uint error = ssSelector & Selector.NullMask;
        if ((ssSelector & Selector.NullMask) == 0 || (ssSelector & Selector.RplMask) != rpl)
        {
            c.RaiseFault(Vector.GP, error);
            return false;
        }

        if (!c.ReadDescriptor(ssSelector, out var ss))
        {
            return false;
        }

        bool writableData = (ss.Attributes & (Descriptor.CodeOrData | Descriptor.Code | Descriptor.WritableOrReadable)) == (Descriptor.CodeOrData | Descriptor.WritableOrReadable);
        if (!writableData || ss.Dpl != rpl)
        {
            c.RaiseFault(Vector.GP, error);
            return false;
        }

        if ((ss.Attributes & Descriptor.Present) == 0)
        {
            c.RaiseFault(Vector.SS, error);
            return false;
        }

        c.SetAccessed(ssSelector, ref ss);
        c.SetSegment(X86Cpu.CS, cs);
        c.SetSegment(X86Cpu.SS, ss);
        c.Gpr(X86Cpu.ESP) = ss.Big ? esp : (c.Gpr(X86Cpu.ESP) & 0xFFFF0000) | (esp & 0xFFFF);
        _ = size;
        c.InvalidateSegmentsForOuterLevel();
        return true;
    }

    public static void Iret(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        if (!c.PeekStack(0, size, out uint offset) || !c.PeekStack((uint)size, size, out uint selectorValue) ||
            !c.PeekStack((uint)(2 * size), size, out uint flags))
        {
            return;
        }

        ushort selector = (ushort)selectorValue;
        if (!c.ProtectedMode)
        {
            c.LoadRealSegment(X86Cpu.CS, selector);
            c.DropStack((uint)(3 * size));
            c.Eip = size == 4 ? offset : offset & 0xFFFF;
            if (size == 2)
            {
                flags = (c.Eflags & 0xFFFF0000) | (flags & 0xFFFF);
            }

            c.WriteFlags(flags, 4, isIret: true);
            return;
        }

        if ((c.SystemFlags & Flags.VM) != 0)
        {
            c.Unimplemented("IRET in virtual-8086 mode");
            return;
        }

        if ((c.SystemFlags & Flags.NT) != 0)
        {
            c.Unimplemented("IRET with NT set (return from a nested task)");
            return;
        }

        if (size == 4 && (flags & Flags.VM) != 0 && c.Cpl == 0)
        {
            c.Unimplemented("IRET to virtual-8086 mode");
            return;
        }

        int rpl = selector & Selector.RplMask;
        if (!c.CheckCodeSegment(selector, rpl, isReturn: true, out var cs))
        {
            return;
        }

        if (offset > cs.Limit)
        {
            c.RaiseFault(Vector.GP, 0);
            return;
        }

        if (size == 2)
        {
            flags = (c.Eflags & 0xFFFF0000) | (flags & 0xFFFF);
        }

        // The flags are loaded with the privilege of the level being left (IOPL and IF rules), SDM vol. 2, IRET.
        if (rpl == c.Cpl)
        {
            c.DropStack((uint)(3 * size));
            c.WriteFlags(flags, 4, isIret: true);
            c.SetSegment(X86Cpu.CS, cs);
            c.Eip = size == 4 ? offset : offset & 0xFFFF;
            return;
        }

        if (!c.PeekStack((uint)(3 * size), size, out uint newEsp) || !c.PeekStack((uint)(4 * size), size, out uint newSs))
        {
            return;
        }

        uint oldEsp = c.Gpr(X86Cpu.ESP);
        c.WriteFlags(flags, 4, isIret: true);
        if (!ReturnToOuterLevel(c, cs, rpl, (ushort)newSs, newEsp, size))
        {
            c.Gpr(X86Cpu.ESP) = oldEsp;
            return;
        }

        c.Eip = size == 4 ? offset : offset & 0xFFFF;
    }

    public static void Int(X86Cpu c, ref MicroOp op) => c.SoftwareInterrupt((int)op.Immediate);

    public static void Into(X86Cpu c, ref MicroOp op)
    {
        if (c.OverflowFlag)
        {
            c.SoftwareInterrupt((int)Vector.OF);
        }
    }

    public static void Hlt(X86Cpu c, ref MicroOp op)
    {
        if (c.ProtectedMode && c.Cpl != 0)
        {
            c.RaiseFault(Vector.GP, 0);
            return;
        }

        c.Halted = true;
        c.EndBlock = true;
        c.Trace?.Halt();
    }

    public static void Bound(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint address = c.EffectiveAddress(ref op);
        int index = X86Cpu.SignExtend(c.ReadRegister(op.Destination, size), size);
        int lower = X86Cpu.SignExtend(c.Read(op.Segment, address, size), size);
        int upper = X86Cpu.SignExtend(c.Read(op.Segment, address + (uint)size, size), size);
        if (!c.FaultPending && (index < lower || index > upper))
        {
            c.RaiseFault(Vector.BR);
        }
    }

    public static void Enter(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        uint allocation = op.Immediate;
        int level = op.Immediate2 & 0x1F;
        uint savedEsp = c.Gpr(X86Cpu.ESP);
        bool stack32 = c.Stack32;
        if (!c.Push(c.ReadRegister(X86Cpu.EBP, size), size))
        {
            return;
        }

        uint frame = c.StackPointer;
        for (int n = 1; n < level; n++)
        {
            uint bp = (stack32 ? c.Gpr(X86Cpu.EBP) : c.Gpr(X86Cpu.EBP) & 0xFFFF) - (uint)(n * size);
            if (!stack32)
            {
                bp &= 0xFFFF;
            }

            uint value = c.Read(X86Cpu.SS, bp, size);
            if (c.FaultPending || !c.Push(value, size))
            {
                c.Gpr(X86Cpu.ESP) = savedEsp;
                return;
            }
        }

        if (level > 0 && !c.Push(frame, size))
        {
            c.Gpr(X86Cpu.ESP) = savedEsp;
            return;
        }

        uint sp = c.StackPointer - allocation;
        c.WriteRegister(X86Cpu.EBP, size, frame);
        c.SetStackPointer(stack32 ? sp : sp & 0xFFFF);
    }

    public static void Leave(X86Cpu c, ref MicroOp op)
    {
        uint savedSp = c.Gpr(X86Cpu.ESP);
        c.SetStackPointer(c.Stack32 ? c.Gpr(X86Cpu.EBP) : c.Gpr(X86Cpu.EBP) & 0xFFFF);
        if (c.Pop(op.Size, out uint value))
        {
            c.WriteRegister(X86Cpu.EBP, op.Size, value);
        }
        else
        {
            c.Gpr(X86Cpu.ESP) = savedSp;
        }
    }
}

using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Loads, stores, PUSH and POP: the TLB hit inline (<see cref="EmitHostAddress"/>), and on a miss, out of line, the
/// CPU state made exact for a fault (count, StartEip, EIP) and the interpreter's checked access. Every register
/// value the op needs is computed before the hit/miss branch, so the register cache's state is the same on both
/// paths where they join; the miss path's values (the operands, the registers to write back on an exit) are
/// those of the access site, captured when it is emitted.
/// </summary>
internal sealed partial class BlockEmitter
{
    /// <summary>Pushes the memory operand's offset: base + (index &lt;&lt; scale) + displacement, 16-bit wrapped for 16-bit addressing.</summary>
    private void EmitEffectiveAddress(ref MicroOp op)
    {
        bool any = false;
        if (op.Base != X86Cpu.NoRegister)
        {
            EmitLoad32(op.Base);
            any = true;
        }

        if (op.Index != X86Cpu.NoRegister)
        {
            EmitLoad32(op.Index);
            if (op.Scale != 0)
            {
                _il.Emit(OpCodes.Ldc_I4, (int)op.Scale);
                _il.Emit(OpCodes.Shl);
            }

            if (any)
            {
                _il.Emit(OpCodes.Add);
            }

            any = true;
        }

        if (!any || op.Displacement != 0)
        {
            _il.Emit(OpCodes.Ldc_I4, unchecked((int)op.Displacement));
            if (any)
            {
                _il.Emit(OpCodes.Add);
            }
        }

        if (!op.Address32)
        {
            EmitAnd(0xFFFF);
        }
    }

    /// <summary>Slow paths, emitted after the body so that the hot path runs straight through.</summary>
    private readonly List<Action> _coldPaths = [];

    /// <summary>Whether some access has the TLB set's address built in (checked on entry).</summary>
    private bool _usesTlb;

    private void EmitColdPaths()
    {
        // Emitting a cold path adds none: it only marks its label and jumps back or to an exit.
        foreach (var path in _coldPaths)
        {
            path();
        }
    }

    /// <summary>The CPU, segment, offset and size: the first arguments of the checked access.</summary>
    private void EmitAccessArguments(int segment, LocalBuilder offset, int sizeBytes)
    {
        EmitCpu();
        _il.Emit(OpCodes.Ldc_I4, segment);
        _il.Emit(OpCodes.Ldloc, offset);
        _il.Emit(OpCodes.Ldc_I4, sizeBytes);
    }

    /// <summary>
    /// The inline TLB hit (X86Cpu.ReadHost/WriteHost with the segment's fast limit): pushes the host address of
    /// segment:offset, or goes to miss. A segment flat when translated is neither based nor limit-checked (the entry
    /// guard checks it is still flat); the entry's address is a constant from the pinned TLB.
    /// </summary>
    private void EmitHostAddress(int segment, LocalBuilder offset, int sizeBytes, bool write, Label miss)
    {
        var linear = offset;
        if ((_context.FlatSegments & (1 << segment)) != 0)
        {
            _assumedFlat |= 1 << segment;
        }
        else
        {
            // (long)offset + size - 1 <= the segment's fast limit, and linear = base + offset.
            _il.Emit(OpCodes.Ldloc, offset);
            _il.Emit(OpCodes.Conv_U8);
            if (sizeBytes > 1)
            {
                _il.Emit(OpCodes.Ldc_I8, (long)(sizeBytes - 1));
                _il.Emit(OpCodes.Add);
            }

            EmitCpu();
            _il.Emit(OpCodes.Ldc_I4, segment);
            _il.Emit(OpCodes.Call, write ? CpuMembers.FastWriteLimit : CpuMembers.FastReadLimit);
            _il.Emit(OpCodes.Bgt, miss);
            linear = Temp();
            EmitCpu();
            _il.Emit(OpCodes.Ldc_I4, segment);
            _il.Emit(OpCodes.Call, CpuMembers.SegmentBase);
            _il.Emit(OpCodes.Ldloc, offset);
            _il.Emit(OpCodes.Add);
            _il.Emit(OpCodes.Stloc, linear);
        }

        // entry = set + ((linear >> 12) & (entries - 1)) * sizeof(TlbEntry); a hit when its tag is the last byte's page.
        _usesTlb = true;
        var entry = PointerTemp();
        _il.Emit(OpCodes.Ldc_I8, (long)_context.TlbSetAddress);
        _il.Emit(OpCodes.Conv_I);
        _il.Emit(OpCodes.Ldloc, linear);
        _il.Emit(OpCodes.Ldc_I4, PhysicalMemory.PageShift - TlbEntryShift);
        _il.Emit(OpCodes.Shr_Un);
        _il.Emit(OpCodes.Ldc_I4, (X86Cpu.TlbEntries - 1) << TlbEntryShift);
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Conv_U);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Stloc, entry);
        _il.Emit(OpCodes.Ldloc, entry);
        if (write)
        {
            _il.Emit(OpCodes.Ldc_I4, TlbEntry.WriteTagOffset);
            _il.Emit(OpCodes.Add);
        }

        _il.Emit(OpCodes.Ldind_U4);
        _il.Emit(OpCodes.Ldloc, linear);
        if (sizeBytes > 1)
        {
            _il.Emit(OpCodes.Ldc_I4, sizeBytes - 1);
            _il.Emit(OpCodes.Add);
        }

        EmitAnd(~(uint)(PhysicalMemory.PageSizeBytes - 1));
        _il.Emit(OpCodes.Bne_Un, miss);
        _il.Emit(OpCodes.Ldloc, entry);
        _il.Emit(OpCodes.Ldc_I4, TlbEntry.AddendOffset);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Ldind_I);
        _il.Emit(OpCodes.Ldloc, linear);
        _il.Emit(OpCodes.Conv_U);
        _il.Emit(OpCodes.Add);
        ReleasePointerTemp(entry);
        if (linear != offset)
        {
            ReleaseTemp(linear);
        }
    }

    /// <summary>log2(sizeof(TlbEntry)).</summary>
    private const int TlbEntryShift = 4;

    /// <summary>value = [segment:offset] of sizeBytes; leaves on a fault (nothing of the op done).</summary>
    private void EmitRead(int segment, LocalBuilder offset, int sizeBytes, LocalBuilder value)
    {
        var miss = _il.DefineLabel();
        var done = _il.DefineLabel();
        EmitHostAddress(segment, offset, sizeBytes, write: false, miss);
        _il.Emit(OpCodes.Unaligned, (byte)1);
        _il.Emit(sizeBytes == 4 ? OpCodes.Ldind_U4 : sizeBytes == 2 ? OpCodes.Ldind_U2 : OpCodes.Ldind_U1);
        _il.Emit(OpCodes.Stloc, value);
        _il.MarkLabel(done);

        AddMissPath(miss, done, () =>
        {
            EmitAccessArguments(segment, offset, sizeBytes);
            _il.Emit(OpCodes.Call, CpuMembers.Read);
            _il.Emit(OpCodes.Stloc, value);
            EmitCpu();
            _il.Emit(OpCodes.Call, CpuMembers.GetFaultPending);
        });
    }

    /// <summary>[segment:offset] = value of sizeBytes; leaves after a fault or a write that ended the block (code written).</summary>
    private void EmitWrite(int segment, LocalBuilder offset, int sizeBytes, LocalBuilder value)
    {
        var miss = _il.DefineLabel();
        var done = _il.DefineLabel();
        EmitHostAddress(segment, offset, sizeBytes, write: true, miss);
        _il.Emit(OpCodes.Ldloc, value);
        _il.Emit(OpCodes.Unaligned, (byte)1);
        _il.Emit(sizeBytes == 4 ? OpCodes.Stind_I4 : sizeBytes == 2 ? OpCodes.Stind_I2 : OpCodes.Stind_I1);
        _il.MarkLabel(done);

        AddMissPath(miss, done, () =>
        {
            EmitAccessArguments(segment, offset, sizeBytes);
            _il.Emit(OpCodes.Ldloc, value);
            _il.Emit(OpCodes.Call, CpuMembers.Write);
            EmitCpu();
            _il.Emit(OpCodes.Ldfld, CpuMembers.EndBlock);
        });
    }

    /// <summary>
    /// The cold path of the access being emitted: the pending flags written and the CPU state made exact for a
    /// fault (as they are at the access), then the checked access, which pushes whether to leave; else back to done.
    /// </summary>
    private void AddMissPath(Label miss, Label done, Action checkedAccess)
    {
        var point = CurrentSyncPoint;
        var exit = ExitLabel();
        var flags = PendingFlagsHere();
        _coldPaths.Add(() =>
        {
            _il.MarkLabel(miss);
            EmitPendingFlags(flags);
            EmitSync(point);
            checkedAccess();
            _il.Emit(OpCodes.Brtrue, exit);
            _il.Emit(OpCodes.Br, done);
        });
    }

    /// <summary>MOV r, m / MOVZX / MOVSX r, m (MoveOps.MovRM, ExtendM): the register is written only if the read succeeded.</summary>
    private void EmitLoadFromMemory(ref MicroOp op, int sizeBytes, bool extend, bool signed)
    {
        var offset = Temp();
        var value = Temp();
        EmitEffectiveAddress(ref op);
        _il.Emit(OpCodes.Stloc, offset);
        EmitRead(op.Segment, offset, sizeBytes, value);
        _il.Emit(OpCodes.Ldloc, value);
        if (extend)
        {
            EmitExtend(sizeBytes, signed);
        }

        EmitStore(op.Destination, op.Size);
        EmitExitIfEndBlock();
        ReleaseTemp(value);
        ReleaseTemp(offset);
    }

    /// <summary>MOV m, r / MOV m, imm (MoveOps.MovMR, MovMI).</summary>
    private void EmitStoreToMemory(ref MicroOp op, bool immediate)
    {
        var offset = Temp();
        var value = Temp();
        EmitEffectiveAddress(ref op);
        _il.Emit(OpCodes.Stloc, offset);
        if (immediate)
        {
            _il.Emit(OpCodes.Ldc_I4, unchecked((int)op.Immediate));
        }
        else
        {
            EmitLoad(op.Source, op.Size);
        }

        _il.Emit(OpCodes.Stloc, value);
        EmitWrite(op.Segment, offset, op.Size, value);
        ReleaseTemp(value);
        ReleaseTemp(offset);
    }

    /// <summary>PUSH r (StackOps.PushR through X86Cpu.Push): write below the stack pointer, then move it; nothing moves if the write faults.</summary>
    private void EmitPush(ref MicroOp op)
    {
        var value = Temp();
        var sp = Temp();
        EmitLoad(op.Source, op.Size);
        _il.Emit(OpCodes.Stloc, value);
        EmitLoad32(X86Cpu.ESP);
        _il.Emit(OpCodes.Ldc_I4, (int)op.Size);
        _il.Emit(OpCodes.Sub);
        if (!_context.Stack32)
        {
            EmitAnd(0xFFFF);
        }

        _il.Emit(OpCodes.Stloc, sp);
        EmitWrite(X86Cpu.SS, sp, op.Size, value);
        EmitSetStackPointer(sp);
        ReleaseTemp(sp);
        ReleaseTemp(value);
    }

    /// <summary>POP r (StackOps.PopR): read at the stack pointer, move it, then write the register (so POP ESP loads ESP).</summary>
    private void EmitPop(ref MicroOp op)
    {
        var value = Temp();
        var sp = Temp();
        EmitLoad32(X86Cpu.ESP);
        if (!_context.Stack32)
        {
            EmitAnd(0xFFFF);
        }

        _il.Emit(OpCodes.Stloc, sp);
        EmitRead(X86Cpu.SS, sp, op.Size, value);
        _il.Emit(OpCodes.Ldloc, sp);
        _il.Emit(OpCodes.Ldc_I4, (int)op.Size);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Stloc, sp);
        EmitSetStackPointer(sp);
        _il.Emit(OpCodes.Ldloc, value);
        EmitStore(op.Destination, op.Size);
        EmitExitIfEndBlock();
        ReleaseTemp(sp);
        ReleaseTemp(value);
    }

    /// <summary>X86Cpu.SetStackPointer: all of ESP with a 32-bit stack, else only SP.</summary>
    private void EmitSetStackPointer(LocalBuilder sp)
    {
        if (_context.Stack32)
        {
            _il.Emit(OpCodes.Ldloc, sp);
            EmitStore32(X86Cpu.ESP);
            return;
        }

        EmitLoad32(X86Cpu.ESP);
        EmitAnd(0xFFFF0000);
        _il.Emit(OpCodes.Ldloc, sp);
        EmitAnd(0xFFFF);
        _il.Emit(OpCodes.Or);
        EmitStore32(X86Cpu.ESP);
    }
}

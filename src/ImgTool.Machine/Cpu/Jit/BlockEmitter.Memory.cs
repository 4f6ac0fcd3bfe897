using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Loads, stores, PUSH and POP: the TLB hit inline (<see cref="X86Cpu.TryReadFast"/>, <see cref="X86Cpu.TryWriteFast"/>),
/// and on a miss the CPU state made exact for a fault (count, StartEip, EIP) and the interpreter's checked access.
/// Every register value the op needs is computed before the hit/miss branch, so the register cache's state is the
/// same on both paths where they join.
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

    /// <summary>The CPU, segment, offset and size: the first arguments of every access helper, fast or slow.</summary>
    private void EmitAccessArguments(int segment, LocalBuilder offset, int sizeBytes)
    {
        EmitCpu();
        _il.Emit(OpCodes.Ldc_I4, segment);
        _il.Emit(OpCodes.Ldloc, offset);
        _il.Emit(OpCodes.Ldc_I4, sizeBytes);
    }

    /// <summary>value = [segment:offset] of sizeBytes; leaves on a fault (nothing of the op done).</summary>
    private void EmitRead(int segment, LocalBuilder offset, int sizeBytes, LocalBuilder value)
    {
        var hit = _il.DefineLabel();
        EmitAccessArguments(segment, offset, sizeBytes);
        _il.Emit(OpCodes.Ldloca, value);
        _il.Emit(OpCodes.Call, CpuMembers.TryReadFast);
        _il.Emit(OpCodes.Brtrue, hit);
        EmitSync();
        EmitAccessArguments(segment, offset, sizeBytes);
        _il.Emit(OpCodes.Call, CpuMembers.Read);
        _il.Emit(OpCodes.Stloc, value);
        EmitExitIfFault();
        _il.MarkLabel(hit);
    }

    /// <summary>[segment:offset] = value of sizeBytes; leaves after a fault or a write that ended the block (code written).</summary>
    private void EmitWrite(int segment, LocalBuilder offset, int sizeBytes, LocalBuilder value)
    {
        var hit = _il.DefineLabel();
        EmitAccessArguments(segment, offset, sizeBytes);
        _il.Emit(OpCodes.Ldloc, value);
        _il.Emit(OpCodes.Call, CpuMembers.TryWriteFast);
        _il.Emit(OpCodes.Brtrue, hit);
        EmitSync();
        EmitAccessArguments(segment, offset, sizeBytes);
        _il.Emit(OpCodes.Ldloc, value);
        _il.Emit(OpCodes.Call, CpuMembers.Write);
        EmitExitIfEndBlock();
        _il.MarkLabel(hit);
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
        if (!_stack32)
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
        if (!_stack32)
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
        if (_stack32)
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

using System.Reflection;
using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;
using ImgTool.Machine.Cpu.Handlers;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Ops whose arithmetic stays in the interpreter's own helpers but whose operands come from the register locals:
/// shifts and rotates on registers (ShiftOps.Shift), IMUL's truncating forms (MulDivOps.TruncatedProduct), ADC and
/// SBB (AluOps.Compute), ALU ops with a memory source, CMP and TEST against memory, SETcc and CMOVcc on
/// registers. The helpers touch only the flags, never R, so no register is written back around them; each op reads
/// memory before it changes anything, as its handler does, so a fault leaves it undone.
/// </summary>
internal sealed unsafe partial class BlockEmitter
{
    private const BindingFlags Statics = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;

    private static readonly MethodInfo ShiftHelper = typeof(ShiftOps).GetMethod(nameof(ShiftOps.Shift), Statics)!;
    private static readonly MethodInfo ProductHelper = typeof(MulDivOps).GetMethod(nameof(MulDivOps.TruncatedProduct), Statics)!;
    private static readonly MethodInfo ComputeHelper = typeof(AluOps).GetMethod(nameof(AluOps.Compute), Statics)!;

    private const int AluCompare = 7;

    private bool TrySpecialiseComputed(ref MicroOp op)
    {
        nint h = (nint)op.Handler;
        if (h == KnownHandlers.ShiftR)
        {
            EmitShift(ref op);
            return true;
        }

        if (h == KnownHandlers.MultiplyTruncatedR)
        {
            EmitLoad(op.Source, op.Size);
            EmitTruncatedProduct(ref op);
            return true;
        }

        if (h == KnownHandlers.AluRR || h == KnownHandlers.AluRI)
        {
            // What TryEmitAlu left: ADC and SBB.
            EmitLoad(op.Destination, op.Size);
            if (h == KnownHandlers.AluRI)
            {
                _il.Emit(OpCodes.Ldc_I4, unchecked((int)op.Immediate));
            }
            else
            {
                EmitLoad(op.Source, op.Size);
            }

            EmitComputeAndStore(ref op);
            return true;
        }

        if (h == KnownHandlers.AluRM)
        {
            var value = EmitReadOperand(ref op, op.Size);
            if (!TryEmitAlu(ref op, AluSource.Local, value))
            {
                EmitLoad(op.Destination, op.Size);
                _il.Emit(OpCodes.Ldloc, value);
                EmitComputeAndStore(ref op);
            }

            ReleaseTemp(value);
            return true;
        }

        if ((h == KnownHandlers.AluMR || h == KnownHandlers.AluMI) && op.Kind == AluCompare)
        {
            // CMP m, r / CMP m, imm: memory is the first operand, nothing is written (AluOps.Compute's Sub record).
            var value = EmitReadOperand(ref op, op.Size);
            var second = Temp();
            var result = Temp();
            EmitSecondOperand(ref op, immediate: h == KnownHandlers.AluMI);
            _il.Emit(OpCodes.Stloc, second);
            if (_flagsLive[_index])
            {
                _il.Emit(OpCodes.Ldloc, value);
                _il.Emit(OpCodes.Ldloc, second);
                _il.Emit(OpCodes.Sub);
                _il.Emit(OpCodes.Stloc, result);
                RecordFlags(FlagOp.Sub, value, second, result, op.Size);
                NoteFoldable(FlagOp.Sub, value, second, result, op.Size);
            }

            ReleaseTemp(result);
            ReleaseTemp(second);
            ReleaseTemp(value);
            return true;
        }

        if (h == KnownHandlers.TestMR || h == KnownHandlers.TestMI)
        {
            var value = EmitReadOperand(ref op, op.Size);
            var zero = Temp();
            var result = Temp();
            _il.Emit(OpCodes.Ldc_I4_0);
            _il.Emit(OpCodes.Stloc, zero);
            _il.Emit(OpCodes.Ldloc, value);
            EmitSecondOperand(ref op, immediate: h == KnownHandlers.TestMI);
            _il.Emit(OpCodes.And);
            _il.Emit(OpCodes.Stloc, result);
            RecordFlags(FlagOp.Logic, null, null, result, op.Size);
            ReleaseTemp(result);
            ReleaseTemp(zero);
            ReleaseTemp(value);
            return true;
        }

        if (h == KnownHandlers.SetccR)
        {
            EmitCondition(op.Kind);
            EmitStore(op.Destination, 1);
            return true;
        }

        if (h == KnownHandlers.CmovRR && op.Size is 2 or 4)
        {
            // Both registers are loaded before the branch, so the register cache agrees on both paths; the
            // condition comes before any temp is taken (a folded one reads the previous op's temps).
            var skip = _il.DefineLabel();
            EmitLoad(op.Source, op.Size);
            _il.Emit(OpCodes.Pop);
            EmitLoad(op.Destination, op.Size);
            _il.Emit(OpCodes.Pop);
            EmitCondition(op.Kind);
            _il.Emit(OpCodes.Brfalse, skip);
            EmitLoad(op.Source, op.Size);
            EmitStore(op.Destination, op.Size);
            _il.MarkLabel(skip);
            return true;
        }

        if (h == KnownHandlers.CmovRM && op.Size is 2 or 4)
        {
            EmitConditionalLoad(ref op);
            return true;
        }

        return false;
    }

    /// <summary>SHL/SHR/SAR/ROL/ROR/RCL/RCR r, imm|CL|1: a masked count of zero changes nothing (no flags either).</summary>
    private void EmitShift(ref MicroOp op)
    {
        if (op.Size2 != 1)
        {
            uint count = op.Immediate & 0x1F;
            if (count == 0)
            {
                return;
            }

            if (op.Kind is RotateLeft or RotateRight)
            {
                EmitInlineRotate(ref op, (int)count);
                return;
            }

            EmitShiftBy(ref op, () => _il.Emit(OpCodes.Ldc_I4, (int)count));
            return;
        }

        // The count from CL: load the operand first, so that both paths leave the register cache alike.
        var skip = _il.DefineLabel();
        var countLocal = Temp();
        EmitLoad(op.Destination, op.Size);
        _il.Emit(OpCodes.Pop);
        EmitLoad32(X86Cpu.ECX);
        EmitAnd(0x1F);
        _il.Emit(OpCodes.Stloc, countLocal);
        // A zero count keeps the flags: the record before is written first, the shift's inside the branch.
        FlushPendingFlags();
        _il.Emit(OpCodes.Ldloc, countLocal);
        _il.Emit(OpCodes.Brfalse, skip);
        EmitShiftBy(ref op, () => _il.Emit(OpCodes.Ldloc, countLocal));
        FlushPendingFlags();
        _il.MarkLabel(skip);
        ReleaseTemp(countLocal);
    }

    /// <summary>SHL, SHR, SAL and SAR inline (BlockEmitter.Shifts.cs); the rotates through ShiftOps.Shift.</summary>
    private void EmitShiftBy(ref MicroOp op, Action pushCount)
    {
        if (op.Kind is ShiftLeft or ShiftRight or ShiftLeftAlias or ShiftArithmetic)
        {
            EmitInlineShift(ref op, pushCount);
        }
        else
        {
            EmitShiftCall(ref op, pushCount);
        }
    }

    private void EmitShiftCall(ref MicroOp op, Action pushCount)
    {
        FlushPendingFlags();
        EmitCpu();
        _il.Emit(OpCodes.Ldc_I4, (int)op.Kind);
        EmitLoad(op.Destination, op.Size);
        pushCount();
        _il.Emit(OpCodes.Ldc_I4, (int)op.Size);
        _il.Emit(OpCodes.Call, ShiftHelper);
        EmitStore(op.Destination, op.Size);
    }

    /// <summary>IMUL r, r/m (Kind 0: times the destination) and IMUL r, r/m, imm (Kind 1), the source on the stack.</summary>
    private void EmitTruncatedProduct(ref MicroOp op)
    {
        var source = Temp();
        _il.Emit(OpCodes.Stloc, source);
        FlushPendingFlags();
        EmitCpu();
        _il.Emit(OpCodes.Ldloc, source);
        if (op.Kind != 0)
        {
            _il.Emit(OpCodes.Ldc_I4, unchecked((int)op.Immediate));
        }
        else
        {
            EmitLoad(op.Destination, op.Size);
        }

        _il.Emit(OpCodes.Ldc_I4, (int)op.Size);
        _il.Emit(OpCodes.Call, ProductHelper);
        EmitStore(op.Destination, op.Size);
        ReleaseTemp(source);
    }

    /// <summary>With a and b on the stack: AluOps.Compute (result and flags), the result stored unless the op is CMP.</summary>
    private void EmitComputeAndStore(ref MicroOp op)
    {
        var b = Temp();
        var a = Temp();
        _il.Emit(OpCodes.Stloc, b);
        _il.Emit(OpCodes.Stloc, a);
        FlushPendingFlags();
        EmitCpu();
        _il.Emit(OpCodes.Ldc_I4, (int)op.Kind);
        _il.Emit(OpCodes.Ldloc, a);
        _il.Emit(OpCodes.Ldloc, b);
        _il.Emit(OpCodes.Ldc_I4, (int)op.Size);
        _il.Emit(OpCodes.Call, ComputeHelper);
        if (op.Kind == AluCompare)
        {
            _il.Emit(OpCodes.Pop);
        }
        else
        {
            EmitStore(op.Destination, op.Size);
        }

        ReleaseTemp(a);
        ReleaseTemp(b);
    }

    /// <summary>The register (Source) or immediate second operand of an op whose first operand is in memory.</summary>
    private void EmitSecondOperand(ref MicroOp op, bool immediate)
    {
        if (immediate)
        {
            _il.Emit(OpCodes.Ldc_I4, unchecked((int)op.Immediate));
        }
        else
        {
            EmitLoad(op.Source, op.Size);
        }
    }

    /// <summary>Reads the op's memory operand into a new temp (released by the caller); leaves on a fault.</summary>
    private LocalBuilder EmitReadOperand(ref MicroOp op, int sizeBytes)
    {
        var offset = Temp();
        var value = Temp();
        EmitEffectiveAddress(ref op);
        _il.Emit(OpCodes.Stloc, offset);
        EmitRead(op.Segment, offset, sizeBytes, value);
        ReleaseTemp(offset);
        return value;
    }
}

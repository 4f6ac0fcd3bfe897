using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// SHL/SAL, SHR and SAR on registers in IL, as ShiftOps.Shift computes them for a count of 1..31 (the caller has
/// skipped a zero count): the result, and when the flags can be read the Shift record (CF and OF computed, ZF SF
/// PF left to the result). Both SHR and SAR shift by count - 1 first: the bit about to go is CF, one more shift
/// gives the result. CMOVcc from memory, which reads whatever the condition, is here too.
/// </summary>
internal sealed partial class BlockEmitter
{
    private const int RotateLeft = 0, RotateRight = 1, ShiftLeft = 4, ShiftRight = 5, ShiftLeftAlias = 6, ShiftArithmetic = 7;

    private LocalBuilder? _wide;

    private void EmitInlineShift(ref MicroOp op, Action pushCount)
    {
        int size = op.Size;
        int bits = size * 8;
        uint mask = X86Cpu.SizeMask(size);
        bool flagsLive = _flagsLive[_index];
        var value = Temp();
        var result = Temp();
        var flags = Temp();
        EmitLoad(op.Destination, size);
        _il.Emit(OpCodes.Stloc, value);
        if (op.Kind is ShiftLeft or ShiftLeftAlias)
        {
            // wide = (ulong)value << count: CF is bit `bits` of it, OF is CF xor the result's sign.
            var wide = _wide ??= _il.DeclareLocal(typeof(ulong));
            _il.Emit(OpCodes.Ldloc, value);
            _il.Emit(OpCodes.Conv_U8);
            pushCount();
            _il.Emit(OpCodes.Shl);
            _il.Emit(OpCodes.Stloc, wide);
            _il.Emit(OpCodes.Ldloc, wide);
            _il.Emit(OpCodes.Conv_U4);
            if (size != 4)
            {
                EmitAnd(mask);
            }

            _il.Emit(OpCodes.Stloc, result);
            if (flagsLive)
            {
                _il.Emit(OpCodes.Ldloc, wide);
                _il.Emit(OpCodes.Ldc_I4, bits);
                _il.Emit(OpCodes.Shr_Un);
                _il.Emit(OpCodes.Conv_U4);
                EmitAnd(1);
                EmitCarryAndCarryXorSign(result, bits);
                EmitFlagBitsFromCarryAndOverflow();
            }
        }
        else
        {
            // before = value >> (count - 1), signed for SAR: CF is its low bit; the result is one more shift.
            bool arithmetic = op.Kind == ShiftArithmetic;
            var before = Temp();
            _il.Emit(OpCodes.Ldloc, value);
            if (arithmetic)
            {
                EmitExtend(size, signed: true);
            }

            pushCount();
            _il.Emit(OpCodes.Ldc_I4_1);
            _il.Emit(OpCodes.Sub);
            _il.Emit(arithmetic ? OpCodes.Shr : OpCodes.Shr_Un);
            _il.Emit(OpCodes.Stloc, before);
            _il.Emit(OpCodes.Ldloc, before);
            _il.Emit(OpCodes.Ldc_I4_1);
            _il.Emit(arithmetic ? OpCodes.Shr : OpCodes.Shr_Un);
            if (arithmetic && size != 4)
            {
                EmitAnd(mask);
            }

            _il.Emit(OpCodes.Stloc, result);
            if (flagsLive)
            {
                _il.Emit(OpCodes.Ldloc, before);
                EmitAnd(1);
                if (arithmetic)
                {
                    _il.Emit(OpCodes.Ldc_I4_0); // SAR clears OF
                }
                else
                {
                    // OF: the operand's sign for a count of 1 (for larger counts the same formula, which gives 0).
                    _il.Emit(OpCodes.Ldloc, before);
                    _il.Emit(OpCodes.Ldc_I4, bits - 1);
                    _il.Emit(OpCodes.Shr_Un);
                    EmitAnd(1);
                }

                EmitFlagBitsFromCarryAndOverflow();
            }

            ReleaseTemp(before);
        }

        if (flagsLive)
        {
            _il.Emit(OpCodes.Stloc, flags);
            RecordFlags(FlagOp.Shift, flags, null, result, size);
        }

        _il.Emit(OpCodes.Ldloc, result);
        EmitStore(op.Destination, size);
        ReleaseTemp(flags);
        ReleaseTemp(result);
        ReleaseTemp(value);
    }

    /// <summary>
    /// ROL/ROR r, imm (count 1..31) as ShiftOps.Shift computes them: the count modulo the width (a multiple of it
    /// leaves the value but still sets CF and OF), CF from the bit that came round, OF from the top two bits.
    /// </summary>
    private void EmitInlineRotate(ref MicroOp op, int count)
    {
        int size = op.Size;
        int bits = size * 8;
        int n = count % bits;
        var value = Temp();
        var result = Temp();
        EmitLoad(op.Destination, size);
        _il.Emit(OpCodes.Stloc, value);
        _il.Emit(OpCodes.Ldloc, value);
        if (n != 0)
        {
            _il.Emit(OpCodes.Ldc_I4, op.Kind == RotateLeft ? n : bits - n);
            _il.Emit(OpCodes.Shl);
            _il.Emit(OpCodes.Ldloc, value);
            _il.Emit(OpCodes.Ldc_I4, op.Kind == RotateLeft ? bits - n : n);
            _il.Emit(OpCodes.Shr_Un);
            _il.Emit(OpCodes.Or);
            if (size != 4)
            {
                EmitAnd(X86Cpu.SizeMask(size));
            }
        }

        _il.Emit(OpCodes.Stloc, result);
        if (_flagsLive[_index])
        {
            var flags = Temp();
            if (op.Kind == RotateLeft)
            {
                // CF = bit 0, OF = CF xor the sign.
                _il.Emit(OpCodes.Ldloc, result);
                EmitAnd(1);
                EmitCarryAndCarryXorSign(result, bits);
            }
            else
            {
                // CF = the sign, OF = the sign xor the bit below it.
                _il.Emit(OpCodes.Ldloc, result);
                _il.Emit(OpCodes.Ldc_I4, bits - 1);
                _il.Emit(OpCodes.Shr_Un);
                EmitAnd(1);
                _il.Emit(OpCodes.Ldloc, result);
                _il.Emit(OpCodes.Ldloc, result);
                _il.Emit(OpCodes.Ldc_I4_1);
                _il.Emit(OpCodes.Shl);
                _il.Emit(OpCodes.Xor);
                _il.Emit(OpCodes.Ldc_I4, bits - 1);
                _il.Emit(OpCodes.Shr_Un);
                EmitAnd(1);
            }

            EmitFlagBitsFromCarryAndOverflow();
            _il.Emit(OpCodes.Stloc, flags);
            RecordCarryOverflow(flags);
            ReleaseTemp(flags);
        }

        _il.Emit(OpCodes.Ldloc, result);
        EmitStore(op.Destination, size);
        ReleaseTemp(result);
        ReleaseTemp(value);
    }

    /// <summary>With CF (0/1) on the stack: CF and CF xor the result's sign (OF after SHL and ROL).</summary>
    private void EmitCarryAndCarryXorSign(LocalBuilder result, int bits)
    {
        _il.Emit(OpCodes.Dup);
        _il.Emit(OpCodes.Ldloc, result);
        _il.Emit(OpCodes.Ldc_I4, bits - 1);
        _il.Emit(OpCodes.Shr_Un);
        _il.Emit(OpCodes.Xor);
    }

    /// <summary>With CF (0/1) and OF (0/1) on the stack: their EFLAGS bits, as the Shift record keeps them.</summary>
    private void EmitFlagBitsFromCarryAndOverflow()
    {
        _il.Emit(OpCodes.Ldc_I4, 11); // OF is bit 11
        _il.Emit(OpCodes.Shl);
        _il.Emit(OpCodes.Or);
    }

    /// <summary>
    /// CMOVcc r, m (MoveOps.CmovRM): the condition is taken first (a folded one reads the previous op's temps, which
    /// the read would reuse), then the operand is read whatever it is, and written only if it holds.
    /// </summary>
    private void EmitConditionalLoad(ref MicroOp op)
    {
        var skip = _il.DefineLabel();
        EmitLoad(op.Destination, op.Size);
        _il.Emit(OpCodes.Pop);
        EmitCondition(op.Kind);
        var condition = Temp();
        _il.Emit(OpCodes.Stloc, condition);
        var value = EmitReadOperand(ref op, op.Size);
        _il.Emit(OpCodes.Ldloc, condition);
        _il.Emit(OpCodes.Brfalse, skip);
        _il.Emit(OpCodes.Ldloc, value);
        EmitStore(op.Destination, op.Size);
        _il.MarkLabel(skip);
        ReleaseTemp(value);
        ReleaseTemp(condition);
    }
}

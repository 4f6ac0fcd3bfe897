using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Conditions folded into the comparison that set the flags: when the op just before a Jcc, SETcc or CMOVcc is a
/// translated 32-bit CMP, SUB, TEST, AND, OR or XOR, its operands and result are still in IL locals and the
/// condition is one compare of them (CMP then JB is a - b borrowing, that is a &lt; b unsigned) instead of a
/// decode of the lazy flag record. The record is still written (the next block may read it).
/// </summary>
internal sealed partial class BlockEmitter
{
    /// <summary>The last op whose flags can be folded: its index in the block, its flag kind and locals.</summary>
    private (int Index, FlagOp Kind, LocalBuilder A, LocalBuilder B, LocalBuilder Result)? _foldable;

    /// <summary>Called by the ALU emitters once a 32-bit result and its operands are in locals.</summary>
    private void NoteFoldable(FlagOp kind, LocalBuilder a, LocalBuilder b, LocalBuilder result, int size)
    {
        _foldable = size == 4 && kind is FlagOp.Sub or FlagOp.Logic ? (_index, kind, a, b, result) : null;
    }

    /// <summary>Pushes the condition (0 or 1): folded when the op before set the flags from locals, else X86Cpu.Condition.</summary>
    private void EmitCondition(int code)
    {
        if (_foldable is { } f && f.Index == _index - 1 && TryEmitFolded(code, f.Kind, f.A, f.B, f.Result))
        {
            return;
        }

        FlushPendingFlags();
        EmitCpu();
        _il.Emit(OpCodes.Ldc_I4, code);
        _il.Emit(OpCodes.Call, CpuMembers.Condition);
    }

    private bool TryEmitFolded(int code, FlagOp kind, LocalBuilder a, LocalBuilder b, LocalBuilder result)
    {
        int condition = code >> 1;
        bool emitted = kind == FlagOp.Sub ? TryEmitAfterSubtract(condition, a, b, result) : TryEmitAfterLogic(condition, result);
        if (emitted && (code & 1) != 0)
        {
            _il.Emit(OpCodes.Ldc_I4_0);
            _il.Emit(OpCodes.Ceq);
        }

        return emitted;
    }

    /// <summary>a - b: CF is a &lt; b unsigned, OF/SF give the signed order (SDM vol. 1, appendix B).</summary>
    private bool TryEmitAfterSubtract(int condition, LocalBuilder a, LocalBuilder b, LocalBuilder result)
    {
        switch (condition)
        {
            case 1: // B
                EmitPair(a, b);
                _il.Emit(OpCodes.Clt_Un);
                return true;
            case 2: // E
                EmitIsZero(result);
                return true;
            case 3: // BE: a <= b unsigned
                EmitPair(a, b);
                _il.Emit(OpCodes.Cgt_Un);
                _il.Emit(OpCodes.Ldc_I4_0);
                _il.Emit(OpCodes.Ceq);
                return true;
            case 4: // S
                EmitIsNegative(result);
                return true;
            case 6: // L
                EmitPair(a, b);
                _il.Emit(OpCodes.Clt);
                return true;
            case 7: // LE
                EmitPair(a, b);
                _il.Emit(OpCodes.Cgt);
                _il.Emit(OpCodes.Ldc_I4_0);
                _il.Emit(OpCodes.Ceq);
                return true;
            default: // O, P: from the record
                return false;
        }
    }

    /// <summary>AND OR XOR TEST clear CF and OF: B is false, L is SF, LE is ZF or SF.</summary>
    private bool TryEmitAfterLogic(int condition, LocalBuilder result)
    {
        switch (condition)
        {
            case 1: // B
                _il.Emit(OpCodes.Ldc_I4_0);
                return true;
            case 2: // E
            case 3: // BE
                EmitIsZero(result);
                return true;
            case 4: // S
            case 6: // L
                EmitIsNegative(result);
                return true;
            case 7: // LE: (int)result <= 0
                _il.Emit(OpCodes.Ldloc, result);
                _il.Emit(OpCodes.Ldc_I4_0);
                _il.Emit(OpCodes.Cgt);
                _il.Emit(OpCodes.Ldc_I4_0);
                _il.Emit(OpCodes.Ceq);
                return true;
            default:
                return false;
        }
    }

    private void EmitPair(LocalBuilder a, LocalBuilder b)
    {
        _il.Emit(OpCodes.Ldloc, a);
        _il.Emit(OpCodes.Ldloc, b);
    }

    private void EmitIsZero(LocalBuilder value)
    {
        _il.Emit(OpCodes.Ldloc, value);
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Ceq);
    }

    private void EmitIsNegative(LocalBuilder value)
    {
        _il.Emit(OpCodes.Ldloc, value);
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Clt);
    }
}

using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// ALU ops on registers and immediates, as AluOps computes them: the result, and the lazy-flag record (kind,
/// operands, result, width) that the Jcc or whatever reads the flags next decodes, unless no one can read it.
/// </summary>
internal sealed partial class BlockEmitter
{
    private const int AluAdd = 0, AluOr = 1, AluAnd = 4, AluSub = 5, AluXor = 6, AluCmp = 7;

    /// <summary>Where an ALU op's second operand comes from.</summary>
    private enum AluSource
    {
        Register,
        Immediate,

        /// <summary>A local the caller filled (the value read from memory).</summary>
        Local,
    }

    private bool TryEmitAlu(ref MicroOp op, AluSource source, LocalBuilder? local = null)
    {
        (OpCode? operation, FlagOp flags) = op.Kind switch
        {
            AluAdd => (OpCodes.Add, FlagOp.Add),
            AluOr => (OpCodes.Or, FlagOp.Logic),
            AluAnd => (OpCodes.And, FlagOp.Logic),
            AluSub or AluCmp => (OpCodes.Sub, FlagOp.Sub),
            AluXor => (OpCodes.Xor, FlagOp.Logic),
            _ => ((OpCode?)null, FlagOp.None), // ADC, SBB read CF: called through
        };
        if (operation is not { } code)
        {
            return false;
        }

        int size = op.Size;
        var a = Temp();
        var b = Temp();
        var result = Temp();
        EmitLoad(op.Destination, size);
        _il.Emit(OpCodes.Stloc, a);
        switch (source)
        {
            case AluSource.Immediate:
                _il.Emit(OpCodes.Ldc_I4, unchecked((int)op.Immediate));
                break;
            case AluSource.Local:
                _il.Emit(OpCodes.Ldloc, local!);
                break;
            default:
                EmitLoad(op.Source, size);
                break;
        }

        _il.Emit(OpCodes.Stloc, b);
        _il.Emit(OpCodes.Ldloc, a);
        _il.Emit(OpCodes.Ldloc, b);
        _il.Emit(code);
        _il.Emit(OpCodes.Stloc, result);
        if (_flagsLive[_index])
        {
            bool logic = flags == FlagOp.Logic;
            RecordFlags(flags, logic ? null : a, logic ? null : b, result, size);
            NoteFoldable(flags, a, b, result, size);
        }

        if (op.Kind != AluCmp)
        {
            _il.Emit(OpCodes.Ldloc, result);
            EmitStore(op.Destination, size);
        }

        ReleaseTemp(result);
        ReleaseTemp(b);
        ReleaseTemp(a);
        return true;
    }

    /// <summary>TEST: the Logic record with zero operands, as AluOps.TestRR/TestRI make it.</summary>
    private void EmitTest(ref MicroOp op, bool immediate)
    {
        if (!_flagsLive[_index])
        {
            return;
        }

        int size = op.Size;
        var zero = Temp();
        var result = Temp();
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Stloc, zero);
        EmitLoad(op.Destination, size);
        if (immediate)
        {
            _il.Emit(OpCodes.Ldc_I4, unchecked((int)op.Immediate));
        }
        else
        {
            EmitLoad(op.Source, size);
        }

        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Stloc, result);
        RecordFlags(FlagOp.Logic, null, null, result, size);
        NoteFoldable(FlagOp.Logic, zero, zero, result, size);
        ReleaseTemp(result);
        ReleaseTemp(zero);
    }

    /// <summary>INC/DEC keep CF, so they always record (SetLazyIncDec reads the current CF).</summary>
    private void EmitIncDec(ref MicroOp op)
    {
        int size = op.Size;
        bool decrement = op.Kind != 0;
        FlushPendingFlags(); // SetLazyIncDec reads CF
        var a = Temp();
        var result = Temp();
        EmitLoad(op.Destination, size);
        _il.Emit(OpCodes.Stloc, a);
        _il.Emit(OpCodes.Ldloc, a);
        _il.Emit(OpCodes.Ldc_I4_1);
        _il.Emit(decrement ? OpCodes.Sub : OpCodes.Add);
        _il.Emit(OpCodes.Stloc, result);
        EmitCpu();
        _il.Emit(decrement ? OpCodes.Ldc_I4_1 : OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Ldloc, a);
        _il.Emit(OpCodes.Ldloc, result);
        _il.Emit(OpCodes.Ldc_I4, size);
        _il.Emit(OpCodes.Call, CpuMembers.SetLazyIncDec);
        _il.Emit(OpCodes.Ldloc, result);
        EmitStore(op.Destination, size);
        ReleaseTemp(result);
        ReleaseTemp(a);
    }
}

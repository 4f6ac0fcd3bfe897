using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Which ops get specialised IL: the handlers that dominate a Linux boot's profile (moves, ALU on registers,
/// LEA, loads and stores, PUSH/POP, Jcc/JMP; and those of BlockEmitter.Compute.cs). The IL reproduces the handler exactly; any other op, or an
/// unusual form of these, is called through.
/// </summary>
internal sealed unsafe partial class BlockEmitter
{
    private Label? _guardFailed;
    private readonly TranslationContext _context;

    /// <summary>The segments whose accesses were emitted without base and limit (flat when translated): checked on entry.</summary>
    private int _assumedFlat;

    private bool TrySpecialise(ref MicroOp op, bool last, out bool setsEip)
    {
        setsEip = false;
        nint h = (nint)op.Handler;
        if (h == KnownHandlers.MovRR)
        {
            EmitLoad(op.Source, op.Size);
            EmitStore(op.Destination, op.Size);
            return true;
        }

        if (h == KnownHandlers.MovRI)
        {
            _il.Emit(OpCodes.Ldc_I4, unchecked((int)op.Immediate));
            EmitStore(op.Destination, op.Size);
            return true;
        }

        if (h == KnownHandlers.Lea)
        {
            EmitEffectiveAddress(ref op);
            EmitStore(op.Destination, op.Size);
            return true;
        }

        if (h == KnownHandlers.ExtendR)
        {
            EmitLoad(op.Source, op.Size2);
            EmitExtend(op.Size2, op.Kind != 0);
            EmitStore(op.Destination, op.Size);
            return true;
        }

        if ((h == KnownHandlers.AluRR || h == KnownHandlers.AluRI) && TryEmitAlu(ref op, h == KnownHandlers.AluRI ? AluSource.Immediate : AluSource.Register))
        {
            return true;
        }

        if (h == KnownHandlers.TestRR || h == KnownHandlers.TestRI)
        {
            EmitTest(ref op, immediate: h == KnownHandlers.TestRI);
            return true;
        }

        if (h == KnownHandlers.IncDecR)
        {
            EmitIncDec(ref op);
            return true;
        }

        if (h == KnownHandlers.MovRM)
        {
            EmitLoadFromMemory(ref op, op.Size, extend: false, signed: false);
            return true;
        }

        if (h == KnownHandlers.ExtendM)
        {
            EmitLoadFromMemory(ref op, op.Size2, extend: true, signed: op.Kind != 0);
            return true;
        }

        if (h == KnownHandlers.MovMR || h == KnownHandlers.MovMI)
        {
            EmitStoreToMemory(ref op, immediate: h == KnownHandlers.MovMI);
            return true;
        }

        if ((h == KnownHandlers.PushR || h == KnownHandlers.PopR) && op.Size is 2 or 4)
        {
            if (h == KnownHandlers.PushR)
            {
                EmitPush(ref op);
            }
            else
            {
                EmitPop(ref op);
            }

            return true;
        }

        if (last && (h == KnownHandlers.Jcc || h == KnownHandlers.JmpRel))
        {
            EmitBranch(ref op, conditional: h == KnownHandlers.Jcc);
            setsEip = true;
            return true;
        }

        return TrySpecialiseComputed(ref op);
    }

    /// <summary>
    /// Entry checks of assumptions made at translation time (<see cref="TranslationContext"/>); if one fails, the
    /// interpreter runs the block. Emitted after the body, once it is known what the body assumed: translated
    /// PUSH/POP the SS size seen then, memory accesses the TLB set and the flat segments, jumps to other members a
    /// flat CS (no member beyond its limit).
    /// </summary>
    private void EmitGuards()
    {
        foreach (var op in _region.Ops)
        {
            if (((nint)op.Handler == KnownHandlers.PushR || (nint)op.Handler == KnownHandlers.PopR) && op.Size is 2 or 4)
            {
                EmitCpu();
                _il.Emit(OpCodes.Call, CpuMembers.GetStack32);
                _il.Emit(_context.Stack32 ? OpCodes.Brfalse : OpCodes.Brtrue, GuardFailed());
                break;
            }
        }

        if (_region.Blocks.Length > 1)
        {
            EmitCpu();
            _il.Emit(OpCodes.Call, CpuMembers.GetCodeLimitFlat);
            _il.Emit(OpCodes.Brfalse, GuardFailed());
        }

        if (_usesTlb)
        {
            EmitCpu();
            _il.Emit(OpCodes.Call, CpuMembers.GetTlbSetOffset);
            _il.Emit(OpCodes.Ldc_I4, _context.TlbSet);
            _il.Emit(OpCodes.Bne_Un, GuardFailed());
        }

        if (_assumedFlat != 0)
        {
            EmitCpu();
            _il.Emit(OpCodes.Call, CpuMembers.GetFlatSegments);
            _il.Emit(OpCodes.Ldc_I4, _assumedFlat);
            _il.Emit(OpCodes.And);
            _il.Emit(OpCodes.Ldc_I4, _assumedFlat);
            _il.Emit(OpCodes.Bne_Un, GuardFailed());
        }
    }

    private Label GuardFailed() => _guardFailed ??= _il.DefineLabel();

    /// <summary>MOVZX/MOVSX of the value on the stack from sourceBytes.</summary>
    private void EmitExtend(int sourceBytes, bool signed)
    {
        if (!signed || sourceBytes == 4)
        {
            return;
        }

        _il.Emit(sourceBytes == 1 ? OpCodes.Conv_I1 : OpCodes.Conv_I2);
    }
}

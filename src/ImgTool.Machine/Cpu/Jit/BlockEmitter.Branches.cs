using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>Jcc and JMP rel ending the block (ControlOps.Jcc, JmpRel): EIP is set to the exit's target.</summary>
internal sealed partial class BlockEmitter
{
    private void EmitBranch(ref MicroOp op, bool conditional)
    {
        // ControlOps.Branch: the next EIP plus the displacement, wrapped to 16 bits for a 16-bit operand or code size.
        uint branchMask = op.Size == 2 || !_block.Code32 ? 0xFFFFu : 0xFFFFFFFFu;
        int end = _offsets[_block.Count];
        var done = _il.DefineLabel();
        if (conditional)
        {
            var taken = _il.DefineLabel();
            EmitCondition(op.Kind);
            _il.Emit(OpCodes.Brtrue, taken);
            EmitCpu();
            EmitEipAt(end);
            _il.Emit(OpCodes.Stfld, CpuMembers.Eip);
            _il.Emit(OpCodes.Br, done);
            _il.MarkLabel(taken);
        }

        EmitCpu();
        EmitEipAt(end);
        _il.Emit(OpCodes.Ldc_I4, unchecked((int)op.Immediate));
        _il.Emit(OpCodes.Add);
        if (branchMask != 0xFFFFFFFF)
        {
            EmitAnd(branchMask);
        }

        _il.Emit(OpCodes.Stfld, CpuMembers.Eip);
        _il.MarkLabel(done);
    }
}

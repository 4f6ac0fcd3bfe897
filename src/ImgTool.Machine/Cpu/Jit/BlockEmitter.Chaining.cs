using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Jumps between a region's members: a Jcc or JMP rel whose target is a member goes straight to that member's
/// label, after the budget check the run loop would make (RunTranslated enters a block only with budget for all of
/// it); a target outside the region, or a budget too short, leaves the method as a block end does.
/// </summary>
internal sealed partial class BlockEmitter
{
    /// <summary>The block's closing Jcc/JMP when one of its targets is a member; false leaves it to the single-block path.</summary>
    private bool TryEmitChainedBranch(ref MicroOp op)
    {
        uint[] targets = [.. Region.DirectTargets(_block)];
        if (targets.Length == 0 || !Array.Exists(targets, target => _region.IndexOf(target) >= 0))
        {
            return false;
        }

        if (targets.Length == 1)
        {
            EmitEdge(targets[0]);
            return true;
        }

        // Both edges leave with the record exact; a folded condition still reads the compare's locals.
        FlushPendingFlags();
        var taken = _il.DefineLabel();
        EmitCondition(op.Kind);
        _il.Emit(OpCodes.Brtrue, taken);
        (int loaded, int dirty) = (_loaded, _dirty);
        EmitEdge(targets[1]);
        (_loaded, _dirty) = (loaded, dirty);
        _il.MarkLabel(taken);
        EmitEdge(targets[0]);
        return true;
    }

    /// <summary>Control to the block at this physical address: a member's label, or out of the method with EIP there.</summary>
    private void EmitEdge(uint target)
    {
        int member = _region.IndexOf(target);
        int targetOffset = (int)(target - _block.Physical);
        FlushPendingFlags();
        if (member < 0)
        {
            EmitLeave(targetOffset, retiredInBlock: _block.Count);
            return;
        }

        // The member expects every region register loaded (reloaded here after a handler call).
        EmitLoadRegisters(_regionRegisters & ~_loaded);
        _il.Emit(OpCodes.Ldloc, _entryInstructions);
        _il.Emit(OpCodes.Ldc_I8, (long)_block.Count);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Stloc, _entryInstructions);

        // if (end - instructions < target's ops) leave: the interpreter would run it, stopping at the budget.
        var enough = _il.DefineLabel();
        EmitEnd();
        _il.Emit(OpCodes.Ldloc, _entryInstructions);
        _il.Emit(OpCodes.Sub);
        _il.Emit(OpCodes.Ldc_I8, (long)_region.Blocks[member].Count);
        _il.Emit(OpCodes.Bge, enough);
        EmitLeave(targetOffset, retiredInBlock: 0);
        _il.MarkLabel(enough);
        _il.Emit(OpCodes.Br, _blockLabels[member]);
    }

    /// <summary>The block's end with EIP at the target: registers written back, StartEip at the last op, the count set, return.</summary>
    private void EmitLeave(int targetOffset, int retiredInBlock)
    {
        FlushMask(_dirty);
        EmitCpu();
        EmitEipAt(_offsets[_block.Count - 1]);
        _il.Emit(OpCodes.Stfld, CpuMembers.StartEip);
        EmitSetInstructions(retiredInBlock);
        EmitCpu();
        EmitEipAt(targetOffset);
        _il.Emit(OpCodes.Stfld, CpuMembers.Eip);
        _il.Emit(OpCodes.Ldc_I4_1);
        _il.Emit(OpCodes.Ret);
    }

    /// <summary>On entry, every register the region uses goes into its local (members start from that state).</summary>
    private void EmitLoadRegionRegisters()
    {
        _loaded = 0;
        _dirty = 0;
        EmitLoadRegisters(_regionRegisters);
    }

    private void EmitLoadRegisters(int mask)
    {
        for (int register = 0; register < 8; register++)
        {
            if ((mask & (1 << register)) != 0)
            {
                EmitRegisterAddress(register);
                _il.Emit(OpCodes.Ldind_U4);
                _il.Emit(OpCodes.Stloc, RegisterLocal(register));
                _loaded |= 1 << register;
            }
        }
    }

    /// <summary>A superset of the registers the ops name (a byte register's number and its 32-bit register), ESP always.</summary>
    private static int RegistersUsed(MicroOp[] ops)
    {
        int mask = 1 << X86Cpu.ESP;
        foreach (ref readonly MicroOp op in ops.AsSpan())
        {
            foreach (byte register in (ReadOnlySpan<byte>)[op.Destination, op.Source, op.Base, op.Index])
            {
                if (register < 8)
                {
                    mask |= (1 << register) | (1 << (register & 3));
                }
            }
        }

        return mask;
    }
}

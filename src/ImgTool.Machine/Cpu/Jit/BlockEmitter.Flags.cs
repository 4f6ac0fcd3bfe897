using System.Reflection.Emit;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Deferred flag records. An op that sets flags someone may read (<see cref="FlagLiveness"/>) does not write the
/// CPU's lazy record at once: the write is kept pending, its operands held in their locals, and emitted where the
/// hot path can observe the flags (a handler or helper call, a condition not folded into locals, the block's end,
/// a jump to another member, an exit), and in the cold path of every memory access in between (a fault there
/// pushes EFLAGS). An op that overwrites all six status flags makes the pending writes dead. So a block whose
/// flags are read only by its closing Jcc writes one record, where the interpreter writes one per op, and a
/// rotate whose CF/OF no one reads costs nothing.
/// </summary>
internal sealed partial class BlockEmitter
{
    /// <summary>The flag writes not yet emitted on the hot path, in order.</summary>
    private readonly List<Action> _pendingFlags = [];

    /// <summary>Locals a pending write reads: not handed out again until it is emitted or dead.</summary>
    private readonly HashSet<LocalBuilder> _heldTemps = [];
    private readonly List<LocalBuilder> _releasedWhileHeld = [];

    /// <summary>The record an op that overwrites all status flags leaves (null operands are 0: Logic ignores them).</summary>
    private void RecordFlags(FlagOp kind, LocalBuilder? a, LocalBuilder? b, LocalBuilder result, int size)
    {
        DropPendingFlags();
        Hold(a);
        Hold(b);
        Hold(result);
        _pendingFlags.Add(() =>
        {
            EmitCpu();
            _il.Emit(OpCodes.Ldc_I4, (int)kind);
            EmitLocalOrZero(a);
            EmitLocalOrZero(b);
            _il.Emit(OpCodes.Ldloc, result);
            _il.Emit(OpCodes.Ldc_I4, size);
            _il.Emit(OpCodes.Call, CpuMembers.SetLazy);
        });
    }

    /// <summary>ROL/ROR: CF and OF (their EFLAGS bits in the local) replace those of the flags before.</summary>
    private void RecordCarryOverflow(LocalBuilder bits)
    {
        Hold(bits);
        _pendingFlags.Add(() =>
        {
            EmitCpu();
            _il.Emit(OpCodes.Ldloc, bits);
            _il.Emit(OpCodes.Call, CpuMembers.SetCarryOverflow);
        });
    }

    /// <summary>Emits the pending writes on the hot path: the CPU's record is exact from here.</summary>
    private void FlushPendingFlags()
    {
        EmitPendingFlags(_pendingFlags);
        DropPendingFlags();
    }

    /// <summary>The pending writes as they stand, for a cold path to emit before it can fault.</summary>
    private Action[] PendingFlagsHere() => [.. _pendingFlags];

    private static void EmitPendingFlags(IEnumerable<Action> writes)
    {
        foreach (var write in writes)
        {
            write();
        }
    }

    private void DropPendingFlags()
    {
        _pendingFlags.Clear();
        _heldTemps.Clear();
        foreach (var local in _releasedWhileHeld)
        {
            _freeTemps.Push(local);
        }

        _releasedWhileHeld.Clear();
    }

    private void Hold(LocalBuilder? local)
    {
        if (local is not null)
        {
            _heldTemps.Add(local);
        }
    }

    private void EmitLocalOrZero(LocalBuilder? local)
    {
        if (local is null)
        {
            _il.Emit(OpCodes.Ldc_I4_0);
        }
        else
        {
            _il.Emit(OpCodes.Ldloc, local);
        }
    }

    /// <summary>
    /// With a condition (0 or 1) on the stack: leave when it is true. An exit on the hot path writes the pending
    /// flags first, out of the way (the shared exit only writes the registers back).
    /// </summary>
    private void EmitExitIf()
    {
        if (_pendingFlags.Count == 0)
        {
            _il.Emit(OpCodes.Brtrue, ExitLabel());
            return;
        }

        var leave = _il.DefineLabel();
        var exit = ExitLabel();
        var writes = PendingFlagsHere();
        _il.Emit(OpCodes.Brtrue, leave);
        _coldPaths.Add(() =>
        {
            _il.MarkLabel(leave);
            EmitPendingFlags(writes);
            _il.Emit(OpCodes.Br, exit);
        });
    }
}

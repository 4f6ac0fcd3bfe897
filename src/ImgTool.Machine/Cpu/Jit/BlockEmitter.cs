using System.Reflection;
using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Emits one block's IL: op by op, either specialised IL (the Emit*.cs parts) or a direct call to the op's
/// interpreter handler. What the interpreter keeps exact after every op, translated code keeps exact wherever
/// something can observe it:
/// <list type="bullet">
/// <item>Guest registers live in IL locals between ops and are written back before any handler call, any slow
/// path and every exit (the handlers and the fault delivery read <see cref="X86Cpu.R"/>).</item>
/// <item><see cref="X86Cpu.Instructions"/>, <see cref="X86Cpu.StartEip"/> and <see cref="X86Cpu.Eip"/> are set,
/// as the interpreter sets them, before each handler call and slow path (a fault restarts at StartEip and device
/// clocks read the count); between those they are only brought up to date at the block's end.</item>
/// <item>Status flags are recorded (lazily, as the handlers do) unless a later op of the block overwrites them
/// all before anything can read them (<see cref="FlagLiveness"/>).</item>
/// </list>
/// An exit for a fault, a self-modifying write or any other EndBlock writes the registers back and leaves through
/// <see cref="X86Cpu.LeaveTranslatedBlock"/>, as RunBlock leaves.
/// </summary>
internal sealed unsafe partial class BlockEmitter
{
    private readonly ILGenerator _il;
    private readonly CodeBlock _block;
    private readonly uint _ipMask;
    private readonly bool[] _flagsLive;

    /// <summary>EIP at block entry: every op's address is a constant offset from it.</summary>
    private readonly LocalBuilder _entryEip;

    /// <summary>Instructions at entry minus those handlers retired beyond one per op (REP iterations).</summary>
    private readonly LocalBuilder _entryInstructions;

    /// <summary>A managed pointer to R[0]: registers are read and written through it without bounds checks.</summary>
    private readonly LocalBuilder _registerBase;

    /// <summary>Byte offset of each op from the block's start, and of the block's end (Count + 1 entries).</summary>
    private readonly int[] _offsets;

    private readonly List<(Label Label, int DirtyMask)> _exits = [];
    private int _index;

    public BlockEmitter(ILGenerator il, CodeBlock block)
    {
        _il = il;
        _block = block;
        _ipMask = block.Code32 ? 0xFFFFFFFF : 0xFFFF;
        _offsets = new int[block.Count + 1];
        for (int i = 0; i < block.Count; i++)
        {
            _offsets[i + 1] = _offsets[i] + block.Ops[i].Length;
        }

        _flagsLive = FlagLiveness.Analyse(block.Ops.AsSpan(0, block.Count));
        _entryEip = il.DeclareLocal(typeof(uint));
        _entryInstructions = il.DeclareLocal(typeof(long));
        _registerBase = il.DeclareLocal(typeof(uint).MakeByRefType());
        _registers = new LocalBuilder?[8];
    }

    /// <summary>Emits the whole method; returns how many ops were specialised.</summary>
    public int EmitBlock()
    {
        EmitStackGuard();
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, CpuMembers.Eip);
        _il.Emit(OpCodes.Stloc, _entryEip);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Call, CpuMembers.GetInstructions);
        _il.Emit(OpCodes.Stloc, _entryInstructions);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, CpuMembers.R);
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Ldelema, typeof(uint));
        _il.Emit(OpCodes.Stloc, _registerBase);

        int specialised = 0;
        bool endSet = false;
        for (_index = 0; _index < _block.Count; _index++)
        {
            ref MicroOp op = ref _block.Ops[_index];
            bool last = _index == _block.Count - 1;
            if (TrySpecialise(ref op, last, out bool setsEip))
            {
                specialised++;
                endSet = last && setsEip;
                if (last)
                {
                    EmitNormalEnd(syncInstructions: true, setEip: !endSet);
                }
            }
            else
            {
                EmitCallThrough(ref op);
                if (last)
                {
                    // The handler has set EIP (a branch) or the sync before it did; the count is exact.
                    EmitNormalEnd(syncInstructions: false, setEip: false);
                }
            }
        }

        EmitExits();
        return specialised;
    }

    private int CurrentOpIndex => _index;

    /// <summary>cpu.StartEip, cpu.Eip and cpu.Instructions as the interpreter has them while op <see cref="_index"/> runs.</summary>
    private void EmitSync()
    {
        _il.Emit(OpCodes.Ldarg_0);
        EmitEipAt(_offsets[_index]);
        _il.Emit(OpCodes.Stfld, CpuMembers.StartEip);
        _il.Emit(OpCodes.Ldarg_0);
        EmitEipAt(_offsets[_index + 1]);
        _il.Emit(OpCodes.Stfld, CpuMembers.Eip);
        EmitSetInstructions(_index + 1);
    }

    private void EmitSetInstructions(int retired)
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldloc, _entryInstructions);
        _il.Emit(OpCodes.Ldc_I8, (long)retired);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Call, CpuMembers.SetInstructions);
    }

    /// <summary>Pushes (entry EIP + offset) wrapped to the code size.</summary>
    private void EmitEipAt(int offset)
    {
        _il.Emit(OpCodes.Ldloc, _entryEip);
        if (offset != 0)
        {
            _il.Emit(OpCodes.Ldc_I4, offset);
            _il.Emit(OpCodes.Add);
        }

        if (_ipMask != 0xFFFFFFFF)
        {
            _il.Emit(OpCodes.Ldc_I4, (int)_ipMask);
            _il.Emit(OpCodes.And);
        }
    }

    /// <summary>An op the translator has no IL for: the interpreter's handler, called directly, exactly as RunBlock calls it.</summary>
    private void EmitCallThrough(ref MicroOp op)
    {
        FlushRegisters(forget: true);
        EmitSync();
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldc_I4, _index);
        _il.Emit(OpCodes.Ldelema, typeof(MicroOp));
        if (HandlerTable.Find(op.Handler) is MethodInfo handler)
        {
            _il.Emit(OpCodes.Call, handler);
        }
        else
        {
            _il.Emit(OpCodes.Ldc_I8, (long)(nint)op.Handler);
            _il.Emit(OpCodes.Conv_I);
            _il.EmitCalli(OpCodes.Calli, System.Reflection.CallingConventions.Standard, typeof(void), [typeof(X86Cpu), typeof(MicroOp).MakeByRefType()], null);
        }

        // A REP string op retires its further iterations itself: rebase the count on what it left.
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Call, CpuMembers.GetInstructions);
        _il.Emit(OpCodes.Ldc_I8, (long)(_index + 1));
        _il.Emit(OpCodes.Sub);
        _il.Emit(OpCodes.Stloc, _entryInstructions);
        EmitExitIfEndBlock();
    }

    /// <summary>if (cpu.EndBlock) leave, with the registers as they are now.</summary>
    private void EmitExitIfEndBlock()
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, CpuMembers.EndBlock);
        _il.Emit(OpCodes.Brtrue, ExitLabel());
    }

    /// <summary>if (cpu.FaultPending) leave (the op did not complete: its register writes have not happened yet).</summary>
    private void EmitExitIfFault()
    {
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Call, CpuMembers.GetFaultPending);
        _il.Emit(OpCodes.Brtrue, ExitLabel());
    }

    /// <summary>An exit that writes back the registers dirty at this point of the block.</summary>
    private Label ExitLabel()
    {
        int dirty = DirtyMask;
        foreach (var exit in _exits)
        {
            if (exit.DirtyMask == dirty)
            {
                return exit.Label;
            }
        }

        var label = _il.DefineLabel();
        _exits.Add((label, dirty));
        return label;
    }

    private void EmitNormalEnd(bool syncInstructions, bool setEip)
    {
        FlushRegisters(forget: false);
        if (syncInstructions)
        {
            _il.Emit(OpCodes.Ldarg_0);
            EmitEipAt(_offsets[_block.Count - 1]);
            _il.Emit(OpCodes.Stfld, CpuMembers.StartEip);
            EmitSetInstructions(_block.Count);
        }

        if (setEip)
        {
            _il.Emit(OpCodes.Ldarg_0);
            EmitEipAt(_offsets[_block.Count]);
            _il.Emit(OpCodes.Stfld, CpuMembers.Eip);
        }

        _il.Emit(OpCodes.Ldc_I4_1);
        _il.Emit(OpCodes.Ret);
    }

    private void EmitExits()
    {
        foreach (var (label, dirty) in _exits)
        {
            _il.MarkLabel(label);
            FlushMask(dirty);
            _il.Emit(OpCodes.Ldarg_0);
            _il.Emit(OpCodes.Call, CpuMembers.LeaveTranslatedBlock);
            _il.Emit(OpCodes.Ldc_I4_1);
            _il.Emit(OpCodes.Ret);
        }

        if (_stackGuard is { } guard)
        {
            _il.MarkLabel(guard);
            _il.Emit(OpCodes.Ldc_I4_0);
            _il.Emit(OpCodes.Ret);
        }
    }
}

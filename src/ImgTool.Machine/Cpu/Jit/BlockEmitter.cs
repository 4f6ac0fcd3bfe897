using System.Reflection;
using System.Reflection.Emit;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Emits one region's IL (<see cref="Region"/>: a hot block and the blocks it jumps to on its page), block by
/// block and op by op, either specialised IL (the Emit*.cs parts) or a direct call to the op's
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
/// <see cref="X86Cpu.LeaveTranslatedBlock"/>, as RunBlock leaves. A jump to another member goes there directly
/// when the run loop would have entered it anyway: the source block cannot have changed anything the loop checks
/// between blocks (<see cref="Region.MayChain"/>) and the budget holds the whole target block, as RunTranslated
/// requires; else the method returns with EIP at the target. Every member starts with the same register-cache
/// state (all the region's registers loaded, any of them possibly dirty), so jumps need no write-back.
/// The method is static with the region's ops as its first argument, bound into the delegate (a closed
/// delegate calls straight in, without the shuffle thunk an open static delegate needs).
/// </summary>
internal sealed unsafe partial class BlockEmitter
{
    private readonly ILGenerator _il;
    private readonly Region _region;
    private readonly Label[] _blockLabels;

    /// <summary>The registers any member uses: loaded on entry and at every jump between members.</summary>
    private readonly int _regionRegisters;

    /// <summary>EIP at method entry (of the head): every op's address is a constant offset from it.</summary>
    private readonly LocalBuilder _entryEip;

    /// <summary>Instructions at the current block's entry minus those handlers retired beyond one per op (REP iterations).</summary>
    private readonly LocalBuilder _entryInstructions;

    /// <summary>A managed pointer to R[0]: registers are read and written through it without bounds checks.</summary>
    private readonly LocalBuilder _registerBase;

    private readonly List<(Label Label, int DirtyMask)> _exits = [];

    // The block being emitted.
    private CodeBlock _block = null!;
    private int _member;
    private int[] _offsets = [];
    private bool[] _flagsLive = [];
    private int _index;

    public BlockEmitter(ILGenerator il, Region region, TranslationContext context)
    {
        _il = il;
        _region = region;
        _context = context;
        _blockLabels = new Label[region.Blocks.Length];
        for (int i = 0; i < _blockLabels.Length; i++)
        {
            _blockLabels[i] = il.DefineLabel();
        }

        _regionRegisters = region.HasInternalJump ? RegistersUsed(region.Ops) : 0;
        _entryEip = il.DeclareLocal(typeof(uint));
        _entryInstructions = il.DeclareLocal(typeof(long));
        _registerBase = il.DeclareLocal(typeof(uint).MakeByRefType());
        _registers = new LocalBuilder?[8];
    }

    /// <summary>Emits the whole method; returns how many ops were specialised.</summary>
    public int EmitRegion()
    {
        // A call with no CPU only compiles the method (the translation worker does it, off the run loop's thread).
        var run = _il.DefineLabel();
        EmitCpu();
        _il.Emit(OpCodes.Brtrue, run);
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Ret);
        _il.MarkLabel(run);

        // The entry checks depend on what the body assumed: emitted after it, reached from here.
        var guards = _il.DefineLabel();
        var body = _il.DefineLabel();
        _il.Emit(OpCodes.Br, guards);
        _il.MarkLabel(body);
        EmitCpu();
        _il.Emit(OpCodes.Ldfld, CpuMembers.Eip);
        _il.Emit(OpCodes.Stloc, _entryEip);
        EmitCpu();
        _il.Emit(OpCodes.Call, CpuMembers.GetInstructions);
        _il.Emit(OpCodes.Stloc, _entryInstructions);
        EmitCpu();
        _il.Emit(OpCodes.Ldfld, CpuMembers.R);
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Ldelema, typeof(uint));
        _il.Emit(OpCodes.Stloc, _registerBase);
        EmitLoadRegionRegisters();

        int specialised = 0;
        for (_member = 0; _member < _region.Blocks.Length; _member++)
        {
            specialised += EmitMember();
        }

        EmitExits();
        EmitColdPaths();
        _il.MarkLabel(guards);
        EmitGuards();
        _il.Emit(OpCodes.Br, body);
        if (_guardFailed is { } guard)
        {
            _il.MarkLabel(guard);
            _il.Emit(OpCodes.Ldc_I4_0);
            _il.Emit(OpCodes.Ret);
        }

        return specialised;
    }

    private int EmitMember()
    {
        _block = _region.Blocks[_member];
        _offsets = new int[_block.Count + 1];
        for (int i = 0; i < _block.Count; i++)
        {
            _offsets[i + 1] = _offsets[i] + _block.Ops[i].Length;
        }

        _flagsLive = FlagLiveness.Analyse(_block.Ops.AsSpan(0, _block.Count));
        _il.MarkLabel(_blockLabels[_member]);
        _foldable = null;
        DropPendingFlags(); // every member starts with the CPU's record exact
        _loaded = _regionRegisters;
        _dirty = _regionRegisters;

        int specialised = 0;
        for (_index = 0; _index < _block.Count; _index++)
        {
            ref MicroOp op = ref _block.Ops[_index];
            bool last = _index == _block.Count - 1;
            if (last && _region.MayChain[_member] && TryEmitChainedBranch(ref op))
            {
                specialised++;
            }
            else if (TrySpecialise(ref op, last, out bool setsEip))
            {
                specialised++;
                if (last)
                {
                    EmitNormalEnd(syncInstructions: true, setEip: !setsEip);
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

        return specialised;
    }

    /// <summary>EIP delta of the current block from the head (members lie on the head's page, so linear and physical deltas agree).</summary>
    private int BlockDelta => (int)(_block.Physical - _region.Head.Physical);

    /// <summary>cpu.StartEip, cpu.Eip and cpu.Instructions as the interpreter has them while op <see cref="_index"/> runs.</summary>
    private void EmitSync() => EmitSync(CurrentSyncPoint);

    /// <summary>Where op <see cref="_index"/> is, kept for a cold path emitted after the body.</summary>
    private SyncPoint CurrentSyncPoint => new(BlockDelta + _offsets[_index], BlockDelta + _offsets[_index + 1], _block.Code32, _index + 1);

    private void EmitSync(SyncPoint point)
    {
        EmitCpu();
        EmitEipAtDelta(point.StartDelta, point.Code32);
        _il.Emit(OpCodes.Stfld, CpuMembers.StartEip);
        EmitCpu();
        EmitEipAtDelta(point.NextDelta, point.Code32);
        _il.Emit(OpCodes.Stfld, CpuMembers.Eip);
        EmitSetInstructions(point.Retired);
    }

    /// <summary>An op's place: its EIP and the next one's as deltas from the entry EIP, and the instructions retired in its block with it.</summary>
    private readonly record struct SyncPoint(int StartDelta, int NextDelta, bool Code32, int Retired);

    private void EmitSetInstructions(int retired)
    {
        EmitCpu();
        _il.Emit(OpCodes.Ldloc, _entryInstructions);
        _il.Emit(OpCodes.Ldc_I8, (long)retired);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Call, CpuMembers.SetInstructions);
    }

    /// <summary>Pushes (entry EIP + the current block's delta + offset) wrapped to the code size.</summary>
    private void EmitEipAt(int offset) => EmitEipAtDelta(BlockDelta + offset, _block.Code32);

    private void EmitEipAtDelta(int delta, bool code32)
    {
        _il.Emit(OpCodes.Ldloc, _entryEip);
        if (delta != 0)
        {
            _il.Emit(OpCodes.Ldc_I4, delta);
            _il.Emit(OpCodes.Add);
        }

        if (!code32)
        {
            _il.Emit(OpCodes.Ldc_I4, 0xFFFF);
            _il.Emit(OpCodes.And);
        }
    }

    private void EmitCpu() => _il.Emit(OpCodes.Ldarg_1);

    private void EmitOps() => _il.Emit(OpCodes.Ldarg_0);

    private void EmitEnd() => _il.Emit(OpCodes.Ldarg_2);

    /// <summary>An op the translator has no IL for: the interpreter's handler, called directly, exactly as RunBlock calls it.</summary>
    private void EmitCallThrough(ref MicroOp op)
    {
        FlushPendingFlags();
        FlushRegisters(forget: true);
        EmitSync();
        EmitCpu();
        EmitOps();
        _il.Emit(OpCodes.Ldc_I4, _region.FirstOp[_member] + _index);
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
        EmitCpu();
        _il.Emit(OpCodes.Call, CpuMembers.GetInstructions);
        _il.Emit(OpCodes.Ldc_I8, (long)(_index + 1));
        _il.Emit(OpCodes.Sub);
        _il.Emit(OpCodes.Stloc, _entryInstructions);
        EmitExitIfEndBlock();
        if (RetiresMore(ref op) && _index < _block.Count - 1)
        {
            // The interpreter stops at the budget after any op; only these can cross it inside a block.
            EmitCpu();
            _il.Emit(OpCodes.Call, CpuMembers.GetInstructions);
            EmitEnd();
            _il.Emit(OpCodes.Clt);
            _il.Emit(OpCodes.Ldc_I4_0);
            _il.Emit(OpCodes.Ceq);
            EmitExitIf();
        }
    }

    /// <summary>String ops with a REP prefix retire one instruction per iteration.</summary>
    private static bool RetiresMore(ref MicroOp op) => op.Repeat != 0;

    /// <summary>if (cpu.EndBlock) leave, with the registers as they are now.</summary>
    private void EmitExitIfEndBlock()
    {
        EmitCpu();
        _il.Emit(OpCodes.Ldfld, CpuMembers.EndBlock);
        EmitExitIf();
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
        FlushPendingFlags();
        FlushRegisters(forget: false);
        if (syncInstructions)
        {
            EmitCpu();
            EmitEipAt(_offsets[_block.Count - 1]);
            _il.Emit(OpCodes.Stfld, CpuMembers.StartEip);
            EmitSetInstructions(_block.Count);
        }

        if (setEip)
        {
            EmitCpu();
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
            EmitCpu();
            _il.Emit(OpCodes.Call, CpuMembers.LeaveTranslatedBlock);
            _il.Emit(OpCodes.Ldc_I4_1);
            _il.Emit(OpCodes.Ret);
        }
    }
}

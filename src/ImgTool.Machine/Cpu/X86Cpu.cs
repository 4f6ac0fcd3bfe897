using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ImgTool.Machine.Cpu.Decode;
using ImgTool.Machine.Cpu.Jit;
using ImgTool.Machine.Memory;
using ImgTool.Machine.Tracing;

namespace ImgTool.Machine.Cpu;

/// <summary>
/// A P6-class 32-bit x86 (i686: CMOV, CMPXCHG8B, BSWAP, XADD, CPUID, RDTSC, MSRs, PSE paging, x87) in real,
/// big-real and 16/32-bit protected mode at any privilege level. The engine runs pre-decoded code: the
/// <see cref="BlockCache"/> lowers Iced's decoding once into <see cref="MicroOp"/> blocks per physical page,
/// each op carrying its handler and resolved operands, so execution never touches an Iced structure. Memory
/// goes through a software TLB that hands out host pointers into RAM; status flags are kept lazily.
/// Guest faults are results: a handler records the exception and returns, the run loop delivers it.
/// This file holds the architectural state and the run loop; the rest of the class is split by concern
/// (LazyFlags, Mmu/, Faults/, Handlers/).
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    // General registers in encoding order (Intel SDM vol. 2, table 2-2).
    public const int EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;

    /// <summary>An always-zero slot after EDI: a memory operand without base or index names it, so address arithmetic has no branches.</summary>
    internal const int NoRegister = 8;

    // Segment registers in encoding order (sreg field).
    public const int ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5;

    // Kept for callers that name the flags through the CPU class.
    public const uint CF = Flags.CF, ZF = Flags.ZF, IF = Flags.IF, DF = Flags.DF, OF = Flags.OF, SF = Flags.SF;

    // Exception vectors (SDM vol. 3, table 6-1), as integers for callers outside the CPU.
    public const int DivideError = (int)Vector.DE, Breakpoint = (int)Vector.BP, Overflow = (int)Vector.OF, BoundRange = (int)Vector.BR,
        InvalidOpcode = (int)Vector.UD, DoubleFault = (int)Vector.DF, InvalidTss = (int)Vector.TS, SegmentNotPresent = (int)Vector.NP,
        StackFault = (int)Vector.SS, GeneralProtection = (int)Vector.GP;

    /// <summary>EAX..EDI, then the zero slot <see cref="NoRegister"/>.</summary>
    public readonly uint[] R = new uint[9];
    public readonly SegmentRegister[] S = new SegmentRegister[6];
    public uint Eip;
    public uint Cr0 = ControlBits.Cr0Reset;
    public uint Cr2, Cr3, Cr4;
    public readonly uint[] Dr = new uint[8];
    public uint GdtBase, GdtLimit, IdtBase, IdtLimit = 0x3FF;
    public SegmentRegister Ldtr, Tr;

    internal readonly PhysicalMemory Memory;
    internal readonly IIoBus Io;
    private readonly BlockCache _code;
    private readonly Dictionary<uint, ulong> _msrs = [];

    /// <summary>EIP of the instruction being executed: where a fault restarts.</summary>
    internal uint StartEip;

    // MOV SS, POP SS and STI hold off interrupts for one instruction (SDM vol. 3, 6.8.3).
    internal bool InterruptShadow;

    /// <summary>Set by a handler when the block must not go on: a fault, a change of mode or of code, a stop.</summary>
    internal bool EndBlock;

    private CpuExit? _exit;
    private bool _userSeen;
    private static readonly bool DebugTraceUser = Environment.GetEnvironmentVariable("IMGTOOL_TRACE_USER") == "1";

    public X86Cpu(PhysicalMemory memory, IIoBus io)
        : this(memory, io, JitSettings.FromEnvironment())
    {
    }

    public X86Cpu(PhysicalMemory memory, IIoBus io, JitSettings jit)
    {
        Memory = memory;
        _translator = CreateTranslator(jit);
        Io = io;
        _code = new BlockCache(this, memory);
        memory.CodeWritten = _code.InvalidateRange;
        memory.LayoutChanged = OnMemoryLayoutChanged;
        _fpuBridge = new FpuBridge(this);
        Reset();
    }

    /// <summary>When set, every instruction, interrupt, exception and HLT is recorded (imgtool boot --trace).</summary>
    public ExecutionTrace? Trace { get; set; }

    /// <summary>The INTR line; null for a CPU without interrupt controller (the vector tests).</summary>
    public IInterruptLine? Interrupts { get; set; }

    /// <summary>FERR#: an unmasked x87 exception at a waiting instruction while CR0.NE is clear (the board's IRQ 13); without it, #MF.</summary>
    public Action? CoprocessorError { get; set; }

    /// <summary>Retired instructions (each REP iteration counts): the machine's clock and the TSC.</summary>
    public long Instructions { get; set; }

    public bool Halted { get; set; }

    /// <summary>Interrupts taken from the interrupt controller since power-on (the spin watchdog's sign of life).</summary>
    public long HardwareInterrupts { get; private set; }

    /// <summary>What stopped the CPU when Run returned TripleFault, Unimplemented or Stopped.</summary>
    public string Diagnosis { get; private set; } = "";

    /// <summary>The decoded-code cache (counters for the boot report and tests).</summary>
    internal BlockCache Code => _code;

    public bool ProtectedMode => (Cr0 & ControlBits.Cr0PE) != 0;

    public bool PagingEnabled => (Cr0 & ControlBits.Cr0PG) != 0;

    /// <summary>The current privilege level: CS.RPL in protected mode (SS.DPL equals it), 3 in virtual-8086 mode, 0 in real mode.</summary>
    public int Cpl { get; private set; }

    internal bool Code32 => S[CS].Big;

    internal bool Stack32 => S[SS].Big;

    /// <summary>The power-on state (SDM vol. 3, 9.1.1): CS:IP = F000:FFF0 with CS base 0xFFFF0000.</summary>
    public void Reset()
    {
        Array.Clear(R);
        R[EDX] = CpuidSignature;
        for (int i = 0; i < S.Length; i++)
        {
            S[i] = new SegmentRegister { Selector = 0, Base = 0, Limit = 0xFFFF, Attributes = SegmentRegister.RealModeAttributes };
        }

        S[CS].Selector = 0xF000;
        S[CS].Base = 0xFFFF0000;
        Eip = 0xFFF0;
        Eflags = Flags.Reserved1;
        Cr0 = ControlBits.Cr0Reset;
        Cr2 = Cr3 = Cr4 = 0;
        Array.Clear(Dr);
        GdtBase = IdtBase = 0;
        GdtLimit = IdtLimit = 0xFFFF;
        Ldtr = Tr = new SegmentRegister { Limit = 0xFFFF, Attributes = Descriptor.Present | Descriptor.Tss16Busy };
        Cpl = 0;
        SelectTlbSet();
        Halted = false;
        InterruptShadow = false;
        ClearFault();
        _exceptionLoop.Reset();
        _msrs.Clear();
        ResetFpu();
        FlushTlb();
    }

    /// <summary>Runs until about budgetInstructions have retired (a block may finish past it), HLT, or an exit condition.</summary>
    public CpuExit Run(long budgetInstructions)
    {
        long end = Instructions + budgetInstructions;
        _exit = null;

        // Callers (the vector tests, a debugger) may have set registers directly: derive the caches from them.
        RefreshSegments();
        UpdateCpl();
        while (Instructions < end)
        {
            // After MOV SS, POP SS or STI the next block runs without an interrupt check before it; a translated
            // region would also skip the checks between its blocks, so that one block is interpreted.
            bool shadowed = false;
            if (InterruptShadow)
            {
                InterruptShadow = false;
                shadowed = true;
            }
            else if ((_eflags & Flags.IF) != 0 && Interrupts is { Pending: true } line)
            {
                Halted = false;
                int vector = line.Acknowledge();
                HardwareInterrupts++;
                StartEip = Eip;
                Trace?.Interrupt(TraceEventKind.HardwareInterrupt, vector);
                Deliver(vector, DeliveryKind.External, hasErrorCode: false, errorCode: 0);
                if (_exit is { } interruptExit)
                {
                    return interruptExit;
                }

                continue;
            }

            if (Halted)
            {
                return CpuExit.Halted;
            }

            if (Cpl == 3)
            {
                _userSeen = true;
            }

            if (Trace is null || (DebugTraceUser && !_userSeen))
            {
                RunBlock(end, shadowed);
            }
            else
            {
                StepTraced();
            }

            BlockObserver?.BlockEnded(this);

            if (_exit is { } exit)
            {
                return exit;
            }
        }

        return CpuExit.Budget;
    }

    /// <summary>Executes the decoded block at CS:EIP (or one instruction where a block cannot be used).</summary>
    private void RunBlock(long end, bool shadowed)
    {
        // A fetch fault restarts at the instruction being fetched.
        StartEip = Eip;
        var block = _code.Lookup();
        if (block is null)
        {
            // The fetch faulted (#PF, #GP on the CS limit) or the code cannot be cached: one instruction at a time.
            if (!FaultPending)
            {
                StepUncached();
            }

            DeliverPendingFault();
            return;
        }

        LastBlockTranslated = false;
        if (_translator is not null && !shadowed && RunTranslated(block, end))
        {
            return;
        }

        ref MicroOp op = ref MemoryMarshal.GetArrayDataReference(block.Ops);
        ref MicroOp last = ref Unsafe.Add(ref op, block.Count - 1);
        EndBlock = false;
        uint ipMask = block.Code32 ? 0xFFFFFFFF : 0xFFFF;
        while (true)
        {
            StartEip = Eip;
            Eip = (Eip + op.Length) & ipMask;
            Instructions++;
            op.Handler(this, ref op);
            if (EndBlock)
            {
                EndBlock = false;
                DeliverPendingFault();
                return;
            }

            if (Unsafe.AreSame(ref op, ref last) || Instructions >= end)
            {
                return;
            }

            op = ref Unsafe.Add(ref op, 1);
        }
    }

    /// <summary>One instruction decoded afresh from linear memory (straddling pages, near the CS limit, or from uncacheable memory).</summary>
    private void StepUncached()
    {
        StartEip = Eip;
        if (!_code.DecodeOne(out MicroOp op))
        {
            return;
        }

        Eip = Code32 ? Eip + op.Length : (ushort)(Eip + op.Length);
        Instructions++;
        EndBlock = false;
        op.Handler(this, ref op);
        EndBlock = false;
    }

    /// <summary>One instruction with the trace recording it (the slow path imgtool boot --trace takes).</summary>
    private void StepTraced()
    {
        StartEip = Eip;
        if (!_code.DecodeOne(out MicroOp op))
        {
            Instructions++;
            DeliverPendingFault();
            return;
        }

        RecordInstruction(Trace!, op.Length);
        Eip = Code32 ? Eip + op.Length : (ushort)(Eip + op.Length);
        Instructions++;
        EndBlock = false;
        op.Handler(this, ref op);
        EndBlock = false;
        DeliverPendingFault();
    }

    /// <summary>Copies the instruction's bytes into the trace (fetched as the uncached decoder does).</summary>
    private void RecordInstruction(ExecutionTrace trace, int lengthBytes)
    {
        Span<byte> bytes = trace.Instruction(Instructions, S[CS].Selector, StartEip, Code32, Math.Max(lengthBytes, 1));
        _code.PeekBytes(StartEip, bytes);
    }

    /// <summary>The instruction at CS:EIP as text, for a diagnosis (decoded afresh: nothing is kept per step).</summary>
    internal string DescribeInstructionAt(uint eip) => _code.Describe(eip);

    internal void Stop(CpuExit exit, string diagnosis)
    {
        _exit ??= exit;
        EndBlock = true;
        if (Diagnosis.Length == 0 || exit != CpuExit.Budget)
        {
            Diagnosis = diagnosis;
        }
    }

    /// <summary>An instruction or feature this CPU does not have: the run stops and names it.</summary>
    internal void Unimplemented(string what) =>
        Stop(CpuExit.Unimplemented, $"unimplemented: {what} at {S[CS].Selector:X4}:{StartEip:X8} ({DescribeInstructionAt(StartEip)})");

    /// <summary>Recomputes CPL after CS, CR0.PE or EFLAGS.VM changed.</summary>
    internal void UpdateCpl()
    {
        int cpl = !ProtectedMode ? 0 : (_eflags & Flags.VM) != 0 ? 3 : S[CS].Selector & Selector.RplMask;
        if (cpl != Cpl)
        {
            Cpl = cpl;
            SelectTlbSet();
        }
    }

    internal ulong ReadMsrValue(uint index) => _msrs.GetValueOrDefault(index);

    internal void WriteMsrValue(uint index, ulong value) => _msrs[index] = value;

    private void OnMemoryLayoutChanged()
    {
        FlushTlb();
        _code.InvalidateAll();
        EndBlock = true;
    }
}

using System.Numerics;
using System.Runtime.CompilerServices;
using Iced.Intel;
using ImgTool.Machine.Memory;
using ImgTool.Machine.Tracing;

namespace ImgTool.Machine.Cpu;

/// <summary>
/// An interpreter for the integer instruction set of a P6-class x86 (i686 with CMOV, CMPXCHG8B, BSWAP,
/// XADD, CPUID, RDTSC, RDMSR/WRMSR) in real, big-real and 16/32-bit protected mode at ring 0, without
/// paging. Instructions come from Iced through the per-page <see cref="DecodeCache"/>. Guest faults are
/// results: an instruction records a pending exception and returns, and the run loop delivers it.
/// </summary>
internal sealed partial class X86Cpu
{
    // General registers in encoding order (Intel SDM vol. 2, table 2-2).
    public const int EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;

    // Segment registers in encoding order (sreg field).
    public const int ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5;

    // EFLAGS bits (Intel SDM vol. 1, 3.4.3).
    public const uint CF = 1u << 0, PF = 1u << 2, AF = 1u << 4, ZF = 1u << 6, SF = 1u << 7, TF = 1u << 8,
        IF = 1u << 9, DF = 1u << 10, OF = 1u << 11, IOPL = 3u << 12, NT = 1u << 14, RF = 1u << 16,
        VM = 1u << 17, AC = 1u << 18, ID = 1u << 21;

    private const uint ArithFlags = CF | PF | AF | ZF | SF | OF;

    // CR0 bits (SDM vol. 3, 2.5).
    public const uint CR0_PE = 1u << 0, CR0_ET = 1u << 4, CR0_PG = 1u << 31;

    // Exception vectors (SDM vol. 3, table 6-1).
    public const int DivideError = 0, Breakpoint = 3, Overflow = 4, BoundRange = 5, InvalidOpcode = 6,
        DoubleFault = 8, InvalidTss = 10, SegmentNotPresent = 11, StackFault = 12, GeneralProtection = 13;

    public readonly uint[] R = new uint[8];
    public readonly SegmentRegister[] S = new SegmentRegister[6];
    public uint Eip;
    public uint Eflags = 2;
    public uint Cr0 = 0x60000010;
    public uint Cr2, Cr3, Cr4;
    public readonly uint[] Dr = new uint[8];
    public uint GdtBase, GdtLimit, IdtBase, IdtLimit = 0x3FF;
    public SegmentRegister Ldtr, Tr;

    private readonly PhysicalMemory _memory;
    private readonly DecodeCache _code;
    private readonly IIoBus _io;
    private readonly Dictionary<uint, ulong> _msrs = [];
    private readonly byte[] _fetchBuffer = new byte[16];

    // The instruction being executed.
    private uint _startEip;
    private int _eaSegment;
    private uint _eaOffset;

    // A pending guest exception raised by the current instruction.
    private int _faultVector = -1;
    private uint _faultErrorCode;
    private bool _faultHasErrorCode;

    // MOV SS, POP SS and STI hold off interrupts for one instruction (SDM vol. 3, 6.8.3).
    private bool _interruptShadow;
    private CpuExit? _exit;

    // A delivery that failed at the first level, kept for the triple-fault diagnosis.
    private int _undeliverableVector = -1;
    private int _faultWhileDelivering = -1;

    public X86Cpu(PhysicalMemory memory, DecodeCache code, IIoBus io)
    {
        _memory = memory;
        _code = code;
        _io = io;
        Reset();
    }

    /// <summary>When set, every instruction, interrupt, exception and HLT is recorded (imgtool boot --trace).</summary>
    public ExecutionTrace? Trace { get; set; }

    /// <summary>The INTR line; null for a CPU without interrupt controller (the vector tests).</summary>
    public IInterruptLine? Interrupts { get; set; }

    /// <summary>Retired instructions (each REP iteration counts): the machine's clock and the TSC.</summary>
    public long Instructions { get; set; }

    public bool Halted { get; set; }

    /// <summary>What stopped the CPU when Run returned TripleFault, Unimplemented or Stopped.</summary>
    public string Diagnosis { get; private set; } = "";

    public bool ProtectedMode => (Cr0 & CR0_PE) != 0;

    public int Cpl => ProtectedMode ? S[CS].Selector & 3 : 0;

    private bool Code32 => S[CS].Big;

    private bool Stack32 => S[SS].Big;

    /// <summary>The power-on state (SDM vol. 3, 9.1.1): CS:IP = F000:FFF0 with CS base 0xFFFF0000.</summary>
    public void Reset()
    {
        Array.Clear(R);
        R[EDX] = 0x0633; // family 6, model 3, stepping 3, as CPUID reports.
        for (int i = 0; i < S.Length; i++)
        {
            S[i] = new SegmentRegister { Selector = 0, Base = 0, Limit = 0xFFFF, Attributes = SegmentRegister.RealModeAttributes };
        }

        S[CS].Selector = 0xF000;
        S[CS].Base = 0xFFFF0000;
        Eip = 0xFFF0;
        Eflags = 2;
        Cr0 = 0x60000010;
        Cr2 = Cr3 = Cr4 = 0;
        GdtBase = IdtBase = 0;
        GdtLimit = IdtLimit = 0xFFFF;
        Ldtr = Tr = new SegmentRegister { Limit = 0xFFFF, Attributes = 0x82 };
        Halted = false;
        _interruptShadow = false;
        _faultVector = -1;
    }

    /// <summary>Runs until the budget is used, HLT, or an exit condition.</summary>
    public CpuExit Run(long budgetInstructions)
    {
        long end = Instructions + budgetInstructions;
        _exit = null;
        while (Instructions < end)
        {
            if (!_interruptShadow && (Eflags & IF) != 0 && Interrupts is { Pending: true } line)
            {
                Halted = false;
                int vector = line.Acknowledge();
                _startEip = Eip;
                Trace?.Interrupt(TraceEventKind.HardwareInterrupt, vector);
                Deliver(vector, isSoftware: false, hasErrorCode: false, errorCode: 0, nested: 0);
                if (_exit is { } interruptExit)
                {
                    return interruptExit;
                }
            }

            if (Halted)
            {
                return CpuExit.Halted;
            }

            _interruptShadow = false;
            Step();
            if (_exit is { } exit)
            {
                return exit;
            }
        }

        return CpuExit.Budget;
    }

    private void Step()
    {
        _startEip = Eip;
        ref readonly SegmentRegister cs = ref S[CS];
        int bitness = cs.Big ? 32 : 16;
        uint remainingInSegment = cs.Limit - Eip;
        if (remainingInSegment >= 15)
        {
            ref readonly Instruction cached = ref _code.TryGet(Translate(cs.Base + Eip), bitness);
            if (!Unsafe.IsNullRef(in cached))
            {
                Retire(in cached, remainingInSegment);
                return;
            }
        }

        Instruction fetched = DecodeSlow(bitness);
        Retire(in fetched, remainingInSegment);
    }

    /// <summary>Counts, traces and executes the instruction at CS:EIP, then delivers the fault it raised, if any.</summary>
    private void Retire(in Instruction instruction, uint remainingInSegment)
    {
        Instructions++;
        if (Trace is { } trace)
        {
            RecordInstruction(trace, instruction.Length);
        }

        if (instruction.Code == Code.INVALID || (uint)instruction.Length - 1 > remainingInSegment)
        {
            if (instruction.Code == Code.INVALID)
            {
                Fault(InvalidOpcode);
            }
            else
            {
                Fault(GeneralProtection, 0);
            }
        }
        else
        {
            Eip = Code32 ? Eip + (uint)instruction.Length : (ushort)(Eip + (uint)instruction.Length);
            Execute(instruction);
        }

        if (_faultVector >= 0)
        {
            int vector = _faultVector;
            _faultVector = -1;
            Eip = _startEip;
            Halted = false;
            Trace?.Exception(vector, _faultHasErrorCode, _faultErrorCode);
            Deliver(vector, isSoftware: false, _faultHasErrorCode, _faultErrorCode, nested: 0);
        }
    }

    /// <summary>Copies the instruction's bytes into the trace (fetched as DecodeSlow does: wrapping at 64 KiB in 16-bit code).</summary>
    private void RecordInstruction(ExecutionTrace trace, int lengthBytes)
    {
        Span<byte> bytes = trace.Instruction(Instructions, S[CS].Selector, _startEip, Code32, Math.Max(lengthBytes, 1));
        uint ipMask = Code32 ? 0xFFFFFFFF : 0xFFFF;
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = _memory.Read8(Translate(S[CS].Base + ((_startEip + (uint)i) & ipMask)));
        }
    }

    /// <summary>The instruction at CS:EIP as text, for a diagnosis (decoded afresh: nothing is kept per step).</summary>
    private string DescribeInstructionAt(uint eip)
    {
        uint ipMask = Code32 ? 0xFFFFFFFF : 0xFFFF;
        Span<byte> bytes = stackalloc byte[15];
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = _memory.Read8(Translate(S[CS].Base + ((eip + (uint)i) & ipMask)));
        }

        Instruction instruction = _code.DecodeUncached(bytes, Code32 ? 32 : 16, eip);
        return instruction.Code == Code.INVALID
            ? $"invalid opcode {Convert.ToHexString(bytes[..4])}"
            : $"'{instruction}'";
    }

    private Instruction DecodeSlow(int bitness)
    {
        // Bytes wrap at the segment's 64 KiB boundary in 16-bit code and may straddle pages or come
        // from ROM or MMIO: fetch them one by one and decode without caching.
        uint ipMask = bitness == 32 ? 0xFFFFFFFF : 0xFFFF;
        for (int i = 0; i < 15; i++)
        {
            _fetchBuffer[i] = _memory.Read8(Translate(S[CS].Base + ((Eip + (uint)i) & ipMask)));
        }

        return _code.DecodeUncached(_fetchBuffer.AsSpan(0, 15), bitness, Eip);
    }

    /// <summary>Linear to physical. Paging (CR0.PG) is not implemented: Execute stops on enabling it.</summary>
    private static uint Translate(uint linear) => linear;

    private void Stop(CpuExit exit, string diagnosis)
    {
        _exit ??= exit;
        if (Diagnosis.Length == 0 || exit != CpuExit.Budget)
        {
            Diagnosis = diagnosis;
        }
    }

    private void Unimplemented(in Instruction instruction) =>
        Stop(CpuExit.Unimplemented, $"unimplemented instruction '{instruction}' at {S[CS].Selector:X4}:{_startEip:X8}");

    /// <summary>Records a guest exception; the run loop delivers it once the instruction returns.</summary>
    private void Fault(int vector)
    {
        if (_faultVector < 0)
        {
            _faultVector = vector;
            _faultHasErrorCode = false;
        }
    }

    private void Fault(int vector, uint errorCode)
    {
        if (_faultVector < 0)
        {
            _faultVector = vector;
            _faultHasErrorCode = true;
            _faultErrorCode = errorCode;
        }
    }

    private bool Faulted => _faultVector >= 0;

    /// <summary>
    /// Delivers an interrupt or exception: through the IVT in real mode (push FLAGS, CS, IP; SDM vol. 3,
    /// 20.1.4), through an IDT interrupt or trap gate at the same privilege in protected mode (6.12.1).
    /// A fault while delivering becomes a double fault, and a fault then a triple fault.
    /// </summary>
    private void Deliver(int vector, bool isSoftware, bool hasErrorCode, uint errorCode, int nested)
    {
        _ = isSoftware;
        uint savedEsp = R[ESP];
        var savedCs = S[CS];
        uint savedEip = Eip;
        bool ok = ProtectedMode ? DeliverProtected(vector, hasErrorCode, errorCode) : DeliverReal(vector);
        if (!ok)
        {
            int faultWhileDelivering = _faultVector;
            _faultVector = -1;
            R[ESP] = savedEsp;
            S[CS] = savedCs;
            Eip = savedEip;
            if (_exit is not null)
            {
                return;
            }

            // A contributory fault during delivery of a contributory fault is a double fault, and a fault
            // while delivering the double fault shuts the processor down (SDM vol. 3, table 6-5).
            if (nested == 1 || vector == DoubleFault)
            {
                Stop(CpuExit.TripleFault, TripleFaultDiagnosis(vector, faultWhileDelivering, nested));
                return;
            }

            _undeliverableVector = vector;
            _faultWhileDelivering = faultWhileDelivering;
            Trace?.Exception(DoubleFault, true, 0);
            Deliver(DoubleFault, false, true, 0, nested + 1);
        }
    }

    /// <summary>
    /// Names where the CPU was, the instruction there, and the chain of deliveries that failed: the
    /// first vector that could not be delivered and the fault each delivery raised.
    /// </summary>
    private string TripleFaultDiagnosis(int vector, int faultWhileDelivering, int nested)
    {
        string at = $"triple fault at {S[CS].Selector:X4}:{_startEip:X8} ({DescribeInstructionAt(_startEip)}, {(ProtectedMode ? "protected" : "real")} mode)";
        string chain = nested == 1
            ? $"{ExceptionNames.Describe(_undeliverableVector)} could not be delivered ({ExceptionNames.Describe(_faultWhileDelivering)} while delivering it), " +
              $"nor the double fault ({ExceptionNames.Describe(faultWhileDelivering)} while delivering it)"
            : $"{ExceptionNames.Describe(vector)} could not be delivered ({ExceptionNames.Describe(faultWhileDelivering)} while delivering it)";
        string table = ProtectedMode ? $"IDT base 0x{IdtBase:X8} limit 0x{IdtLimit:X4}" : $"interrupt table base 0x{IdtBase:X8} limit 0x{IdtLimit:X4}";
        return $"{at}: {chain}; {table}, SS:ESP {S[SS].Selector:X4}:{R[ESP]:X8}";
    }

    private bool DeliverReal(int vector)
    {
        uint entry = IdtBase + ((uint)vector * 4);
        if ((uint)vector * 4 + 3 > IdtLimit)
        {
            Fault(GeneralProtection, 0);
            return false;
        }

        uint flags = Eflags;
        if (!Push(flags & 0xFFFF, 2) || !Push(S[CS].Selector, 2) || !Push(Eip & 0xFFFF, 2))
        {
            return false;
        }

        Eflags &= ~(IF | TF | AC | RF);
        ushort offset = _memory.Read16(Translate(entry));
        ushort selector = _memory.Read16(Translate(entry + 2));
        LoadRealSegment(CS, selector);
        Eip = offset;
        return true;
    }

    private bool DeliverProtected(int vector, bool hasErrorCode, uint errorCode)
    {
        uint index = (uint)vector * 8;
        if (index + 7 > IdtLimit)
        {
            Fault(GeneralProtection, index + 2);
            return false;
        }

        uint low = _memory.Read32(Translate(IdtBase + index));
        uint high = _memory.Read32(Translate(IdtBase + index + 4));
        uint type = (high >> 8) & 0x1F;
        bool gate32 = type is 0xE or 0xF;
        if (type is not (0x6 or 0x7 or 0xE or 0xF) || (high & 0x8000) == 0)
        {
            if (type == 0x5)
            {
                Stop(CpuExit.Unimplemented, $"task gate for vector {vector} (task switches are not implemented)");
                return false;
            }

            Fault((high & 0x8000) == 0 ? SegmentNotPresent : GeneralProtection, index + 2);
            return false;
        }

        ushort selector = (ushort)(low >> 16);
        uint offset = (low & 0xFFFF) | (gate32 ? high & 0xFFFF0000 : 0);
        if (!ReadDescriptor(selector, out var target, out _) || (target.Attributes & 0x18) != 0x18)
        {
            Fault(GeneralProtection, selector & 0xFFFCu);
            return false;
        }

        int dpl = (target.Attributes >> 5) & 3;
        bool conforming = (target.Attributes & 0x04) != 0;
        if (!conforming && dpl < Cpl)
        {
            Stop(CpuExit.Unimplemented, $"interrupt {vector} to an inner privilege level (stack switch through the TSS is not implemented)");
            return false;
        }

        int size = gate32 ? 4 : 2;
        if (!Push(Eflags, size) || !Push(S[CS].Selector, size) || !Push(Eip, size))
        {
            return false;
        }

        if (hasErrorCode && !Push(errorCode, size))
        {
            return false;
        }

        // Interrupt gates clear IF, trap gates keep it (SDM vol. 3, 6.12.1.3).
        Eflags &= ~(TF | NT | RF | VM);
        if ((type & 1) == 0)
        {
            Eflags &= ~IF;
        }

        target.Selector = (ushort)((selector & 0xFFFCu) | (uint)Cpl);
        S[CS] = target;
        Eip = gate32 ? offset : offset & 0xFFFF;
        return true;
    }

    private void LoadRealSegment(int segment, ushort selector)
    {
        // Real mode changes only selector and base; the hidden limit stays (big-real mode relies on it).
        S[segment].Selector = selector;
        S[segment].Base = (uint)selector << 4;
    }

    /// <summary>Reads and decodes a GDT/LDT descriptor; false (with #GP) when outside the table.</summary>
    private bool ReadDescriptor(ushort selector, out SegmentRegister descriptor, out uint address)
    {
        uint index = (uint)selector & 0xFFF8;
        bool local = (selector & 4) != 0;
        uint tableBase = local ? Ldtr.Base : GdtBase;
        uint tableLimit = local ? Ldtr.Limit : GdtLimit;
        address = tableBase + index;
        if (index + 7 > tableLimit)
        {
            descriptor = default;
            Fault(GeneralProtection, selector & 0xFFFCu);
            return false;
        }

        uint low = _memory.Read32(Translate(address));
        uint high = _memory.Read32(Translate(address + 4));
        uint limit = (low & 0xFFFF) | (high & 0x000F0000);
        if ((high & 0x00800000) != 0)
        {
            limit = (limit << 12) | 0xFFF;
        }

        descriptor = new SegmentRegister
        {
            Selector = selector,
            Base = (low >> 16) | ((high & 0xFF) << 16) | (high & 0xFF000000),
            Limit = limit,
            Attributes = (ushort)(((high >> 8) & 0xFF) | ((high >> 8) & 0xF000)),
        };
        return true;
    }

    /// <summary>MOV/POP/LxS to a segment register (SDM vol. 2, MOV: protected-mode checks, abridged for ring 0).</summary>
    private bool LoadSegment(int segment, ushort selector)
    {
        if (!ProtectedMode || (Eflags & VM) != 0)
        {
            LoadRealSegment(segment, selector);
            return true;
        }

        if ((selector & 0xFFFC) == 0)
        {
            if (segment == SS || segment == CS)
            {
                Fault(GeneralProtection, 0);
                return false;
            }

            // A null selector loads an unusable segment; using it faults (not checked here).
            S[segment] = new SegmentRegister { Selector = selector };
            return true;
        }

        if (!ReadDescriptor(selector, out var descriptor, out _))
        {
            return false;
        }

        if ((descriptor.Attributes & 0x10) == 0)
        {
            Fault(GeneralProtection, selector & 0xFFFCu);
            return false;
        }

        if ((descriptor.Attributes & SegmentRegister.AttrPresent) == 0)
        {
            Fault(segment == SS ? StackFault : SegmentNotPresent, selector & 0xFFFCu);
            return false;
        }

        if (segment == CS)
        {
            descriptor.Selector = (ushort)((selector & 0xFFFCu) | (uint)Cpl);
        }

        S[segment] = descriptor;
        return true;
    }

    /// <summary>Checks an access of sizeBytes at a segment offset against the hidden limit (#GP, or #SS for SS).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool CheckLimit(int segment, uint offset, int sizeBytes)
    {
        uint limit = S[segment].Limit;
        if (offset > limit || limit - offset < (uint)(sizeBytes - 1))
        {
            Fault(segment == SS ? StackFault : GeneralProtection, 0);
            return false;
        }

        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ReadMem(int segment, uint offset, int sizeBytes) =>
        _memory.Read(Translate(S[segment].Base + offset), sizeBytes);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteMem(int segment, uint offset, int sizeBytes, uint value) =>
        _memory.Write(Translate(S[segment].Base + offset), sizeBytes, value);

    private uint StackPointer => Stack32 ? R[ESP] : R[ESP] & 0xFFFF;

    private void SetStackPointer(uint value)
    {
        if (Stack32)
        {
            R[ESP] = value;
        }
        else
        {
            R[ESP] = (R[ESP] & 0xFFFF0000) | (value & 0xFFFF);
        }
    }

    private bool Push(uint value, int sizeBytes)
    {
        uint sp = StackPointer - (uint)sizeBytes;
        if (!Stack32)
        {
            sp &= 0xFFFF;
        }

        if (!CheckLimit(SS, sp, sizeBytes))
        {
            return false;
        }

        WriteMem(SS, sp, sizeBytes, value);
        SetStackPointer(sp);
        return true;
    }

    /// <summary>Reads the stack item at byte offset 'depth' above the stack pointer without popping.</summary>
    private bool PeekStack(uint depth, int sizeBytes, out uint value)
    {
        uint sp = StackPointer + depth;
        if (!Stack32)
        {
            sp &= 0xFFFF;
        }

        if (!CheckLimit(SS, sp, sizeBytes))
        {
            value = 0;
            return false;
        }

        value = ReadMem(SS, sp, sizeBytes);
        return true;
    }

    private void DropStack(uint bytes) => SetStackPointer(StackPointer + bytes);

    private bool Pop(int sizeBytes, out uint value)
    {
        if (!PeekStack(0, sizeBytes, out value))
        {
            return false;
        }

        DropStack((uint)sizeBytes);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ParityBit(uint value) => (BitOperations.PopCount(value & 0xFF) & 1) == 0 ? (int)PF : 0;
}

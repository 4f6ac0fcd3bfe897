using ImgTool.Machine.Tracing;

namespace ImgTool.Machine.Cpu;

/// <summary>
/// Exceptions and interrupts: one path raises (records) them, one delivers them. Real mode goes through the
/// IVT (SDM vol. 3, 20.1.4); protected mode through IDT interrupt and trap gates, to the same privilege or, for
/// a less privileged caller, onto the stack the TSS names for the handler's level (6.12.1). A fault while
/// delivering becomes a double fault by the rules of table 6-5, and a fault while delivering that is a
/// triple fault: the run stops with a diagnosis of the chain.
/// </summary>
internal sealed partial class X86Cpu
{
    // The exception the current instruction raised (-1: none).
    private int _faultVector = -1;
    private uint _faultErrorCode;
    private bool _faultHasErrorCode;

    private ExceptionLoop _exceptionLoop;

    // Nesting of deliveries, for double and triple faults, and what failed, for the diagnosis.
    private int _deliveryDepth;
    private int _firstUndeliverable = -1, _faultDuringFirst = -1;

    internal bool FaultPending => _faultVector >= 0;

    /// <summary>Raises an exception without error code; the first one an instruction raises wins.</summary>
    internal void RaiseFault(Vector vector)
    {
        if (_faultVector < 0)
        {
            _faultVector = (int)vector;
            _faultHasErrorCode = false;
            _faultErrorCode = 0;
        }

        EndBlock = true;
    }

    internal void RaiseFault(Vector vector, uint errorCode)
    {
        if (_faultVector < 0)
        {
            _faultVector = (int)vector;
            _faultHasErrorCode = true;
            _faultErrorCode = errorCode;
        }

        EndBlock = true;
    }

    private void ClearFault() => _faultVector = -1;

    /// <summary>Delivers the exception the last instruction raised, restarting it (faults restore EIP to the instruction).</summary>
    private void DeliverPendingFault()
    {
        if (_faultVector < 0)
        {
            return;
        }

        int vector = _faultVector;
        _faultVector = -1;
        Eip = StartEip;
        Halted = false;
        Trace?.Exception(vector, _faultHasErrorCode, _faultErrorCode);
        uint cr2 = vector == (int)Vector.PF ? Cr2 : 0;
        if (_exceptionLoop.Record(vector, S[CS].Selector, StartEip, _faultErrorCode, cr2, Instructions))
        {
            Stop(CpuExit.ExceptionLoop, ExceptionLoopDiagnosis(vector, cr2));
            return;
        }

        Deliver(vector, DeliveryKind.Exception, _faultHasErrorCode, _faultErrorCode);
    }

    /// <summary>INT n / INT3 / INTO / INT1: a trap, the pushed EIP is the next instruction.</summary>
    internal void SoftwareInterrupt(int vector)
    {
        Trace?.Interrupt(TraceEventKind.SoftwareInterrupt, vector);
        EndBlock = true;
        if (ProtectedMode && (_eflags & Flags.VM) != 0 && vector != (int)Vector.BP && vector != (int)Vector.OF)
        {
            // INT n in virtual-8086 mode with IOPL < 3 is #GP(0) (SDM vol. 3, 20.3.3); IOPL 3 goes to the IDT.
            if (((_eflags & Flags.IOPL) >> Flags.IoplShift) < 3)
            {
                RaiseFault(Vector.GP, 0);
                return;
            }
        }

        Deliver(vector, DeliveryKind.Software, hasErrorCode: false, errorCode: 0);
        if (_faultVector >= 0)
        {
            // The delivery faulted: that fault is reported at the INT instruction.
            return;
        }
    }

    /// <summary>Delivers a vector; a fault during delivery escalates to a double fault, then a triple fault.</summary>
    internal void Deliver(int vector, DeliveryKind kind, bool hasErrorCode, uint errorCode)
    {
        if (_deliveryDepth == 0)
        {
            _firstUndeliverable = _faultDuringFirst = -1;
        }

        _deliveryDepth++;
        try
        {
            DeliverNested(vector, kind, hasErrorCode, errorCode);
        }
        finally
        {
            _deliveryDepth--;
        }
    }

    private void DeliverNested(int vector, DeliveryKind kind, bool hasErrorCode, uint errorCode)
    {
        EndBlock = true;
        uint savedEsp = R[ESP];
        uint savedEip = Eip;
        bool ok = ProtectedMode ? DeliverProtected(vector, kind, hasErrorCode, errorCode) : DeliverReal(vector);
        if (ok)
        {
            return;
        }

        int during = _faultVector;
        _faultVector = -1;
        R[ESP] = savedEsp;
        Eip = savedEip;
        if (_exit is not null || during < 0)
        {
            return;
        }

        if (vector == (int)Vector.DF || _deliveryDepth > 3)
        {
            Stop(CpuExit.TripleFault, TripleFaultDiagnosis(during));
            return;
        }

        if (_firstUndeliverable < 0)
        {
            // The diagnosis names the first delivery that failed and the last (the double fault's).
            _firstUndeliverable = vector;
            _faultDuringFirst = during;
        }

        uint duringError = _faultErrorCode;
        bool duringHasError = _faultHasErrorCode;
        bool escalate = (VectorClass.IsContributory(vector) && VectorClass.IsContributory(during)) ||
            (vector == (int)Vector.PF && (VectorClass.IsContributory(during) || during == (int)Vector.PF));
        if (escalate)
        {
            Trace?.Exception((int)Vector.DF, true, 0);
            Deliver((int)Vector.DF, DeliveryKind.Exception, hasErrorCode: true, errorCode: 0);
        }
        else
        {
            // Benign combinations are handled serially: the second exception is delivered (SDM vol. 3, table 6-5).
            Trace?.Exception(during, duringHasError, duringError);
            Deliver(during, DeliveryKind.Exception, duringHasError, duringError);
        }
    }

    /// <summary>The exception, where it was raised, the instruction there and how often it came back.</summary>
    private string ExceptionLoopDiagnosis(int vector, uint cr2)
    {
        string mode = !ProtectedMode ? "real mode" : $"protected mode{(PagingEnabled ? " with paging" : "")}, CPL {Cpl}";
        string what = vector == (int)Vector.PF ? "page-fault loop" : "exception loop";
        string address = vector == (int)Vector.PF ? $" for linear address 0x{cr2:X8}" : "";
        string error = _faultHasErrorCode ? $", error code 0x{_faultErrorCode:X4}" : "";
        return $"{what}: {ExceptionNames.Describe(vector)} at {S[CS].Selector:X4}:{StartEip:X8} ({DescribeInstructionAt(StartEip)}, {mode}){address}{error}, " +
            $"delivered {_exceptionLoop.Repeats} times in a row over {Instructions - _exceptionLoop.FirstInstruction} instructions: " +
            "the handler returns to the instruction without curing the cause";
    }

    /// <summary>Names where the CPU was, the instruction there, and the chain of deliveries that failed.</summary>
    private string TripleFaultDiagnosis(int faultDuringDoubleFault)
    {
        string mode = !ProtectedMode ? "real mode" : $"protected mode{(PagingEnabled ? " with paging" : "")}, CPL {Cpl}";
        string at = $"triple fault at {S[CS].Selector:X4}:{StartEip:X8} ({DescribeInstructionAt(StartEip)}, {mode})";
        string chain = _firstUndeliverable >= 0
            ? $"{ExceptionNames.Describe(_firstUndeliverable)} could not be delivered ({ExceptionNames.Describe(_faultDuringFirst)} while delivering it), " +
              $"nor the double fault ({ExceptionNames.Describe(faultDuringDoubleFault)} while delivering it)"
            : $"the double fault could not be delivered ({ExceptionNames.Describe(faultDuringDoubleFault)} while delivering it)";
        string table = ProtectedMode ? $"IDT base 0x{IdtBase:X8} limit 0x{IdtLimit:X4}" : $"interrupt table base 0x{IdtBase:X8} limit 0x{IdtLimit:X4}";
        string pf = PagingEnabled ? $", CR2 0x{Cr2:X8} CR3 0x{Cr3:X8}" : "";
        return $"{at}: {chain}; {table}, SS:ESP {S[SS].Selector:X4}:{R[ESP]:X8}{pf}";
    }

    private bool DeliverReal(int vector)
    {
        uint entry = IdtBase + ((uint)vector * 4);
        if ((uint)vector * 4 + 3 > IdtLimit)
        {
            RaiseFault(Vector.GP, 0);
            return false;
        }

        uint flags = Eflags;
        uint sp = StackPointer;
        uint mask = Stack32 ? 0xFFFFFFFF : 0xFFFF;
        if (!ProbeWrite(SS, (sp - 6) & mask, 2) || !ProbeWrite(SS, (sp - 2) & mask, 2))
        {
            return false;
        }

        Push(flags & 0xFFFF, 2);
        Push(S[CS].Selector, 2);
        Push(Eip & 0xFFFF, 2);
        ushort offset = (ushort)ReadSystem(entry, 2);
        ushort selector = (ushort)ReadSystem(entry + 2, 2);
        _eflags &= ~(Flags.IF | Flags.TF | Flags.AC | Flags.RF);
        LoadRealSegment(CS, selector);
        Eip = offset;
        return !FaultPending;
    }

    private bool DeliverProtected(int vector, DeliveryKind kind, bool hasErrorCode, uint errorCode)
    {
        uint ext = kind == DeliveryKind.Software ? 0u : 1u;
        uint idtError = ((uint)vector << 3) | 2 | ext;
        if ((uint)vector * 8 + 7 > IdtLimit)
        {
            RaiseFault(Vector.GP, idtError);
            return false;
        }

        uint low = ReadSystem(IdtBase + ((uint)vector * 8), 4);
        uint high = ReadSystem(IdtBase + ((uint)vector * 8) + 4, 4);
        if (FaultPending)
        {
            return false;
        }

        int type = (int)(high >> 8) & Descriptor.TypeMask;
        bool present = (high & (1u << 15)) != 0;
        int gateDpl = (int)(high >> 13) & 3;
        if (type is not (Descriptor.InterruptGate16 or Descriptor.TrapGate16 or Descriptor.InterruptGate32 or Descriptor.TrapGate32 or Descriptor.TaskGate) ||
            ((high >> 12) & 1) != 0)
        {
            RaiseFault(Vector.GP, idtError);
            return false;
        }

        if (kind == DeliveryKind.Software && gateDpl < Cpl)
        {
            RaiseFault(Vector.GP, idtError);
            return false;
        }

        if (!present)
        {
            RaiseFault(Vector.NP, idtError);
            return false;
        }

        if (type == Descriptor.TaskGate)
        {
            Stop(CpuExit.Unimplemented, $"{ExceptionNames.Describe(vector)} through a task gate at {S[CS].Selector:X4}:{StartEip:X8} (hardware task switches are not implemented)");
            return false;
        }

        bool gate32 = type is Descriptor.InterruptGate32 or Descriptor.TrapGate32;
        ushort selector = (ushort)(low >> 16);
        uint offset = (low & 0xFFFF) | (gate32 ? high & 0xFFFF0000 : 0);
        if ((selector & Selector.NullMask) == 0)
        {
            RaiseFault(Vector.GP, ext);
            return false;
        }

        if (!ReadDescriptor(selector, out var target, ext))
        {
            return false;
        }

        int dpl = target.Dpl;
        bool isCode = (target.Attributes & (Descriptor.CodeOrData | Descriptor.Code)) == (Descriptor.CodeOrData | Descriptor.Code);
        if (!isCode || dpl > Cpl)
        {
            RaiseFault(Vector.GP, (selector & Selector.NullMask) | ext);
            return false;
        }

        if ((target.Attributes & Descriptor.Present) == 0)
        {
            RaiseFault(Vector.NP, (selector & Selector.NullMask) | ext);
            return false;
        }

        if ((_eflags & Flags.VM) != 0)
        {
            Stop(CpuExit.Unimplemented, $"{ExceptionNames.Describe(vector)} from virtual-8086 mode at {S[CS].Selector:X4}:{StartEip:X8} (virtual-8086 mode is not implemented)");
            return false;
        }

        bool conforming = (target.Attributes & Descriptor.ExpandDownOrConforming) != 0;
        int size = gate32 ? 4 : 2;
        uint flags = Eflags;
        if (!conforming && dpl < Cpl)
        {
            // Inner privilege: the handler's stack comes from the TSS (SDM vol. 3, 6.12.1, 7.2.1).
            if (!ReadTssStack(dpl, out ushort newSs, out uint newEsp, ext) || !LoadStackForPrivilege(newSs, dpl, out var ss, ext))
            {
                return false;
            }

            uint frame = (uint)((hasErrorCode ? 6 : 5) * size);
            uint top = ss.Big ? newEsp : newEsp & 0xFFFF;
            uint bottom = top - frame;
            if (!ss.Big)
            {
                bottom &= 0xFFFF;
            }

            if (!FitsStack(ss, bottom, frame))
            {
                RaiseFault(Vector.SS, (newSs & Selector.NullMask) | ext);
                return false;
            }

            ushort oldSs = S[SS].Selector;
            uint oldEsp = R[ESP];
            ushort oldCs = S[CS].Selector;
            uint linear = ss.Base + bottom;
            uint at = 0;
            if (hasErrorCode)
            {
                WriteSystem(linear + at, size, errorCode);
                at += (uint)size;
            }

            WriteSystem(linear + at, size, Eip);
            WriteSystem(linear + at + (uint)size, size, oldCs);
            WriteSystem(linear + at + (uint)(2 * size), size, flags);
            WriteSystem(linear + at + (uint)(3 * size), size, oldEsp);
            WriteSystem(linear + at + (uint)(4 * size), size, oldSs);
            if (FaultPending)
            {
                return false;
            }

            SetSegment(SS, ss);
            R[ESP] = ss.Big ? bottom : (R[ESP] & 0xFFFF0000) | bottom;
            target.Selector = (ushort)((selector & Selector.NullMask) | (uint)dpl);
        }
        else
        {
            uint frame = (uint)((hasErrorCode ? 4 : 3) * size);
            uint mask = Stack32 ? 0xFFFFFFFF : 0xFFFF;
            uint bottom = (StackPointer - frame) & mask;
            if (!ProbeWrite(SS, bottom, (int)Math.Min(frame, 4u)) || !ProbeWrite(SS, (bottom + frame - (uint)size) & mask, size))
            {
                return false;
            }

            Push(flags, size);
            Push(S[CS].Selector, size);
            Push(Eip, size);
            if (hasErrorCode)
            {
                Push(errorCode, size);
            }

            if (FaultPending)
            {
                return false;
            }

            target.Selector = (ushort)((selector & Selector.NullMask) | (uint)Cpl);
        }

        // Interrupt gates clear IF, trap gates keep it (SDM vol. 3, 6.12.1.3).
        _eflags &= ~(Flags.TF | Flags.NT | Flags.RF | Flags.VM);
        if (type is Descriptor.InterruptGate16 or Descriptor.InterruptGate32)
        {
            _eflags &= ~Flags.IF;
        }

        SetAccessed(selector, ref target);
        SetSegment(CS, target);
        Eip = gate32 ? offset : offset & 0xFFFF;
        return true;
    }

    /// <summary>The stack pointer for privilege level 'level' from the current TSS (16- or 32-bit layout, SDM vol. 3, 7.2.1 and 7.6).</summary>
    private bool ReadTssStack(int level, out ushort ss, out uint esp, uint ext)
    {
        bool tss32 = (Tr.Attributes & Descriptor.TypeMask) is Descriptor.Tss32Available or Descriptor.Tss32Busy;
        uint entry = tss32 ? (uint)(4 + (level * 8)) : (uint)(2 + (level * 4));
        uint entryBytes = tss32 ? 8u : 4u;
        if (entry + entryBytes - 1 > Tr.Limit)
        {
            ss = 0;
            esp = 0;
            RaiseFault(Vector.TS, (Tr.Selector & Selector.NullMask) | ext);
            return false;
        }

        if (tss32)
        {
            esp = ReadSystem(Tr.Base + entry, 4);
            ss = (ushort)ReadSystem(Tr.Base + entry + 4, 2);
        }
        else
        {
            esp = ReadSystem(Tr.Base + entry, 2);
            ss = (ushort)ReadSystem(Tr.Base + entry + 2, 2);
        }

        return !FaultPending;
    }

    /// <summary>Loads the descriptor of a stack segment for privilege 'level' (checks of SDM vol. 3, 6.12.1.1: #TS on each).</summary>
    private bool LoadStackForPrivilege(ushort selector, int level, out SegmentRegister ss, uint ext)
    {
        ss = default;
        uint error = (selector & Selector.NullMask) | ext;
        if ((selector & Selector.NullMask) == 0 || (selector & Selector.RplMask) != level)
        {
            RaiseFault(Vector.TS, error);
            return false;
        }

        if (!ReadDescriptor(selector, out ss, ext, Vector.TS))
        {
            return false;
        }

        bool writableData = (ss.Attributes & (Descriptor.CodeOrData | Descriptor.Code | Descriptor.WritableOrReadable)) == (Descriptor.CodeOrData | Descriptor.WritableOrReadable);
        if (!writableData || ss.Dpl != level)
        {
            RaiseFault(Vector.TS, error);
            return false;
        }

        if ((ss.Attributes & Descriptor.Present) == 0)
        {
            RaiseFault(Vector.SS, error);
            return false;
        }

        SetAccessed(selector, ref ss);
        return true;
    }

    /// <summary>True when bytes [bottom, bottom + length) lie inside the stack segment's limit (expand-up or down).</summary>
    private static bool FitsStack(in SegmentRegister ss, uint bottom, uint length)
    {
        ulong last = (ulong)bottom + length - 1;
        if (ss.ExpandDown)
        {
            return bottom > ss.Limit && last <= (ss.Big ? 0xFFFFFFFFul : 0xFFFFul);
        }

        return last <= ss.Limit;
    }
}

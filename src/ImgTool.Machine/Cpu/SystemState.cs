namespace ImgTool.Machine.Cpu;

/// <summary>
/// Privilege checks, control registers, CPUID, MSRs and the time-stamp counter: the state system instructions
/// read and write, with the side effects each write has on the TLB, the decoded blocks and the mode.
/// </summary>
internal sealed partial class X86Cpu
{
    /// <summary>CPUID leaf 1 EAX and EDX at reset: family 6, model 3, stepping 3 (a Pentium II "Klamath").</summary>
    internal const uint CpuidSignature = 0x0633;

    // CPUID.1:EDX features (SDM vol. 2, table 3-11): FPU, DE, PSE, TSC, MSR, CX8, CMOV. No APIC (the machine has
    // none), no SEP (no SYSENTER), no PGE, no MTRR, no MMX/SSE, no FXSR until the x87 unit saves that image.
    private const uint CpuidFeatures = (1u << 0) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 8) | (1u << 15);

    internal int Iopl => (int)((_eflags & Flags.IOPL) >> Flags.IoplShift);

    /// <summary>The TSC: one tick per retired instruction, so time stays deterministic.</summary>
    internal ulong TimeStampCounter => (ulong)(Instructions + _tscOffset);

    private long _tscOffset;

    internal void SetSystemFlag(uint flag, bool value) => _eflags = value ? _eflags | flag : _eflags & ~flag;

    /// <summary>Privileged instructions: #GP(0) unless at ring 0 (or in real mode).</summary>
    internal bool RequireRing0()
    {
        if (ProtectedMode && Cpl != 0)
        {
            RaiseFault(Vector.GP, 0);
            return false;
        }

        return true;
    }

    /// <summary>CLI/STI: allowed when CPL &lt;= IOPL (SDM vol. 2, CLI), else #GP(0).</summary>
    internal bool IoPrivileged()
    {
        if (ProtectedMode && Cpl > Iopl)
        {
            RaiseFault(Vector.GP, 0);
            return false;
        }

        return true;
    }

    /// <summary>IN/OUT/INS/OUTS: allowed at CPL &lt;= IOPL, else when the TSS I/O bitmap clears every bit of the port range (SDM vol. 1, 18.5.2).</summary>
    internal bool CheckIoPermission(ushort port, int sizeBytes)
    {
        if (!ProtectedMode || (Cpl <= Iopl && (_eflags & Flags.VM) == 0))
        {
            return true;
        }

        bool tss32 = (Tr.Attributes & Descriptor.TypeMask) is Descriptor.Tss32Available or Descriptor.Tss32Busy;
        const uint BitmapOffsetField = 0x66;
        if (tss32 && Tr.Limit >= BitmapOffsetField + 1)
        {
            uint bitmap = ReadSystem(Tr.Base + BitmapOffsetField, 2);
            uint byteOffset = bitmap + ((uint)port >> 3);
            if (!FaultPending && byteOffset + 1 <= Tr.Limit)
            {
                uint bits = ReadSystem(Tr.Base + byteOffset, 2);
                uint mask = ((1u << sizeBytes) - 1) << (port & 7);
                if (!FaultPending && (bits & mask) == 0)
                {
                    return true;
                }
            }
        }

        RaiseFault(Vector.GP, 0);
        return false;
    }

    internal void CancelFault()
    {
        _faultVector = -1;
        EndBlock = false;
    }

    internal void WriteCr0(uint value)
    {
        if ((value & ControlBits.Cr0PG) != 0 && (value & ControlBits.Cr0PE) == 0)
        {
            RaiseFault(Vector.GP, 0);
            return;
        }

        // ET is hard-wired to 1 on a P6.
        value |= ControlBits.Cr0ET;
        uint changed = Cr0 ^ value;
        Cr0 = value;
        if ((changed & (ControlBits.Cr0PG | ControlBits.Cr0WP | ControlBits.Cr0PE)) != 0)
        {
            FlushTlb();
            UpdateCpl();
            RefreshSegments();
        }

        EndBlock = true;
    }

    internal void WriteCr3(uint value)
    {
        Cr3 = value;
        FlushTlb();
        EndBlock = true;
    }

    internal void WriteCr4(uint value)
    {
        if ((value & ~ControlBits.Cr4Supported) != 0)
        {
            RaiseFault(Vector.GP, 0);
            return;
        }

        if (((Cr4 ^ value) & ControlBits.Cr4PSE) != 0)
        {
            FlushTlb();
        }

        Cr4 = value;
        EndBlock = true;
    }

    internal void ExecuteCpuid()
    {
        switch (R[EAX])
        {
            case 0:
                // The highest leaf, then "GenuineIntel" in EBX, EDX, ECX.
                R[EAX] = 1;
                R[EBX] = 0x756E6547;
                R[EDX] = 0x49656E69;
                R[ECX] = 0x6C65746E;
                break;
            case 1:
                R[EAX] = CpuidSignature;
                R[EBX] = 0;
                R[ECX] = 0;
                R[EDX] = CpuidFeatures;
                break;
            default:
                // Leaves above the highest return the highest basic leaf's values on Intel; this CPU has leaf 1 only, so zeros.
                R[EAX] = R[EBX] = R[ECX] = R[EDX] = 0;
                break;
        }
    }

    /// <summary>RDMSR: the MSRs a P6 has that a kernel reads; an unknown MSR raises #GP(0) as on hardware.</summary>
    internal bool ReadMsr(uint index, out ulong value)
    {
        switch (index)
        {
            case Msr.Tsc:
                value = TimeStampCounter;
                return true;
            case Msr.PlatformId:
            case Msr.BiosSignId:
            case Msr.MtrrCap:
            case Msr.MiscEnable:
            case Msr.SysenterCs:
            case Msr.SysenterEsp:
            case Msr.SysenterEip:
                value = ReadMsrValue(index);
                return true;
            default:
                value = 0;
                RaiseFault(Vector.GP, 0);
                return false;
        }
    }

    internal void WriteMsr(uint index, ulong value)
    {
        switch (index)
        {
            case Msr.Tsc:
                _tscOffset = (long)value - Instructions;
                break;
            case Msr.PlatformId:
            case Msr.BiosSignId:
            case Msr.MiscEnable:
            case Msr.SysenterCs:
            case Msr.SysenterEsp:
            case Msr.SysenterEip:
                WriteMsrValue(index, value);
                break;
            default:
                RaiseFault(Vector.GP, 0);
                break;
        }
    }
}

using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>
/// System instructions (descriptor tables, task register, control and debug registers, MSRs, CPUID, TSC, TLB),
/// the atomic read-modify-writes (XADD, CMPXCHG, CMPXCHG8B), and the invalid/unimplemented ends. Privileged
/// instructions raise #GP(0) outside ring 0 (SDM vol. 3, 5.9).
/// </summary>
internal static class SystemOps
{
    public static void Nop(X86Cpu c, ref MicroOp op)
    {
    }

    public static void InvalidOpcode(X86Cpu c, ref MicroOp op) => c.RaiseFault(Vector.UD);

    public static void Unimplemented(X86Cpu c, ref MicroOp op) => c.Unimplemented("instruction");

    /// <summary>INVD, WBINVD: no caches to flush; privileged.</summary>
    public static void Privileged(X86Cpu c, ref MicroOp op) => c.RequireRing0();

    public static void XaddRR(X86Cpu c, ref MicroOp op)
    {
        uint destination = c.ReadRegister(op.Destination, op.Size);
        uint source = c.ReadRegister(op.Source, op.Size);
        uint sum = AluOps.Compute(c, 0, destination, source, op.Size);
        c.WriteRegister(op.Source, op.Size, destination);
        c.WriteRegister(op.Destination, op.Size, sum);
    }

    public static void XaddMR(X86Cpu c, ref MicroOp op)
    {
        uint address = c.EffectiveAddress(ref op);
        uint destination = c.Read(op.Segment, address, op.Size);
        if (c.FaultPending)
        {
            return;
        }

        uint source = c.ReadRegister(op.Source, op.Size);
        c.Write(op.Segment, address, op.Size, destination + source);
        if (!c.FaultPending)
        {
            AluOps.Compute(c, 0, destination, source, op.Size);
            c.WriteRegister(op.Source, op.Size, destination);
        }
    }

    public static void CmpxchgRR(X86Cpu c, ref MicroOp op)
    {
        uint destination = c.ReadRegister(op.Destination, op.Size);
        AluOps.Compute(c, 7, c.ReadRegister(X86Cpu.EAX, op.Size), destination, op.Size);
        if (c.ZeroFlag)
        {
            c.WriteRegister(op.Destination, op.Size, c.ReadRegister(op.Source, op.Size));
        }
        else
        {
            c.WriteRegister(X86Cpu.EAX, op.Size, destination);
        }
    }

    public static void CmpxchgMR(X86Cpu c, ref MicroOp op)
    {
        uint address = c.EffectiveAddress(ref op);
        uint destination = c.Read(op.Segment, address, op.Size);
        if (c.FaultPending)
        {
            return;
        }

        uint accumulator = c.ReadRegister(X86Cpu.EAX, op.Size);
        bool equal = accumulator == destination;

        // The destination is written either way (a locked read-modify-write, SDM vol. 2, CMPXCHG).
        c.Write(op.Segment, address, op.Size, equal ? c.ReadRegister(op.Source, op.Size) : destination);
        if (c.FaultPending)
        {
            return;
        }

        AluOps.Compute(c, 7, accumulator, destination, op.Size);
        if (!equal)
        {
            c.WriteRegister(X86Cpu.EAX, op.Size, destination);
        }
    }

    public static void Cmpxchg8b(X86Cpu c, ref MicroOp op)
    {
        uint address = c.EffectiveAddress(ref op);
        uint low = c.Read32(op.Segment, address);
        uint high = c.Read32(op.Segment, address + 4);
        if (c.FaultPending || !c.ProbeWrite(op.Segment, address, 4) || !c.ProbeWrite(op.Segment, address + 4, 4))
        {
            return;
        }

        bool equal = low == c.Gpr(X86Cpu.EAX) && high == c.Gpr(X86Cpu.EDX);
        c.Write32(op.Segment, address, equal ? c.Gpr(X86Cpu.EBX) : low);
        c.Write32(op.Segment, address + 4, equal ? c.Gpr(X86Cpu.ECX) : high);
        if (!equal)
        {
            c.Gpr(X86Cpu.EAX) = low;
            c.Gpr(X86Cpu.EDX) = high;
        }

        c.SetFlag(Flags.ZF, equal);
    }

    public static void Cpuid(X86Cpu c, ref MicroOp op) => c.ExecuteCpuid();

    public static void Rdtsc(X86Cpu c, ref MicroOp op)
    {
        if ((c.Cr4 & ControlBits.Cr4TSD) != 0 && c.ProtectedMode && c.Cpl != 0)
        {
            c.RaiseFault(Vector.GP, 0);
            return;
        }

        ulong tsc = c.TimeStampCounter;
        c.Gpr(X86Cpu.EAX) = (uint)tsc;
        c.Gpr(X86Cpu.EDX) = (uint)(tsc >> 32);
    }

    public static void Rdmsr(X86Cpu c, ref MicroOp op)
    {
        if (c.RequireRing0() && c.ReadMsr(c.Gpr(X86Cpu.ECX), out ulong value))
        {
            c.Gpr(X86Cpu.EAX) = (uint)value;
            c.Gpr(X86Cpu.EDX) = (uint)(value >> 32);
        }
    }

    public static void Wrmsr(X86Cpu c, ref MicroOp op)
    {
        if (c.RequireRing0())
        {
            c.WriteMsr(c.Gpr(X86Cpu.ECX), ((ulong)c.Gpr(X86Cpu.EDX) << 32) | c.Gpr(X86Cpu.EAX));
        }
    }

    public static void Invlpg(X86Cpu c, ref MicroOp op)
    {
        if (c.RequireRing0())
        {
            c.FlushTlbPage(c.SegmentBase(op.Segment) + c.EffectiveAddress(ref op));
        }
    }

    /// <summary>LGDT (Kind 0) / LIDT (Kind 1): with a 16-bit operand size only 24 bits of the base are loaded.</summary>
    public static void LoadTable(X86Cpu c, ref MicroOp op)
    {
        if (!c.RequireRing0())
        {
            return;
        }

        uint address = c.EffectiveAddress(ref op);
        uint limit = c.Read16(op.Segment, address);
        uint tableBase = c.Read32(op.Segment, address + 2);
        if (c.FaultPending)
        {
            return;
        }

        if (op.Size == 2)
        {
            tableBase &= 0x00FFFFFF;
        }

        if (op.Kind == 0)
        {
            c.GdtBase = tableBase;
            c.GdtLimit = limit;
        }
        else
        {
            c.IdtBase = tableBase;
            c.IdtLimit = limit;
        }
    }

    public static void StoreTable(X86Cpu c, ref MicroOp op)
    {
        uint address = c.EffectiveAddress(ref op);
        bool global = op.Kind == 0;
        if (!c.ProbeWrite(op.Segment, address, 2) || !c.ProbeWrite(op.Segment, address + 2, 4))
        {
            return;
        }

        c.Write16(op.Segment, address, global ? c.GdtLimit : c.IdtLimit);
        c.Write32(op.Segment, address + 2, global ? c.GdtBase : c.IdtBase);
    }

    private static bool ReadSelectorOperand(X86Cpu c, ref MicroOp op, out ushort selector)
    {
        selector = (ushort)(op.Size2 == 1 ? c.Gpr(op.Source) : c.Read16(op.Segment, c.EffectiveAddress(ref op)));
        return !c.FaultPending;
    }

    /// <summary>LLDT (Kind 0) / LTR (Kind 1), SDM vol. 2: protected mode only, ring 0, a descriptor of the right system type.</summary>
    public static void LoadSystemSegment(X86Cpu c, ref MicroOp op)
    {
        if (!c.ProtectedMode || (c.SystemFlags & Flags.VM) != 0)
        {
            c.RaiseFault(Vector.UD);
            return;
        }

        if (!c.RequireRing0() || !ReadSelectorOperand(c, ref op, out ushort selector))
        {
            return;
        }

        bool task = op.Kind == 1;
        if ((selector & Selector.NullMask) == 0)
        {
            if (task)
            {
                c.RaiseFault(Vector.GP, 0);
            }
            else
            {
                c.Ldtr = new SegmentRegister { Selector = selector };
            }

            return;
        }

        if ((selector & Selector.TableIndicator) != 0)
        {
            c.RaiseFault(Vector.GP, selector & Selector.NullMask);
            return;
        }

        if (!c.ReadDescriptor(selector, out var descriptor))
        {
            return;
        }

        int type = descriptor.Attributes & Descriptor.TypeMask;
        bool system = (descriptor.Attributes & Descriptor.CodeOrData) == 0;
        bool right = system && (task ? type is Descriptor.Tss16Available or Descriptor.Tss32Available : type == Descriptor.Ldt);
        if (!right)
        {
            c.RaiseFault(Vector.GP, selector & Selector.NullMask);
            return;
        }

        if ((descriptor.Attributes & Descriptor.Present) == 0)
        {
            c.RaiseFault(Vector.NP, selector & Selector.NullMask);
            return;
        }

        if (task)
        {
            // LTR marks the TSS busy in its descriptor (SDM vol. 3, 7.2.4).
            descriptor.Attributes |= Descriptor.BusyTss;
            c.DescriptorAddress(selector, out uint address);
            c.WriteSystem(address + 5, 1, c.ReadSystem(address + 5, 1) | Descriptor.BusyTss);
            c.Tr = descriptor;
        }
        else
        {
            c.Ldtr = descriptor;
        }
    }

    /// <summary>SLDT (Kind 0), STR (Kind 1), SMSW (Kind 2): to a register (zero-extended) or a 16-bit memory word.</summary>
    public static void StoreSystemRegister(X86Cpu c, ref MicroOp op)
    {
        if (op.Kind < 2 && (!c.ProtectedMode || (c.SystemFlags & Flags.VM) != 0))
        {
            c.RaiseFault(Vector.UD);
            return;
        }

        uint value = op.Kind switch
        {
            0 => c.Ldtr.Selector,
            1 => c.Tr.Selector,
            _ => c.Cr0,
        };
        if (op.Size2 == 1)
        {
            c.WriteRegister(op.Destination, op.Size, op.Size == 4 && op.Kind == 2 ? value : value & 0xFFFF);
        }
        else
        {
            c.Write16(op.Segment, c.EffectiveAddress(ref op), value);
        }
    }

    public static void Lmsw(X86Cpu c, ref MicroOp op)
    {
        if (!c.RequireRing0() || !ReadSelectorOperand(c, ref op, out ushort value))
        {
            return;
        }

        // LMSW sets PE but cannot clear it (SDM vol. 2, LMSW).
        uint low = value & 0xFu;
        c.WriteCr0((c.Cr0 & ~0xEu) | low | (c.Cr0 & ControlBits.Cr0PE));
    }

    public static void Clts(X86Cpu c, ref MicroOp op)
    {
        if (c.RequireRing0())
        {
            c.Cr0 &= ~ControlBits.Cr0TS;
        }
    }

    /// <summary>MOV CRn/DRn, r32 (Kind 0 control, 1 debug).</summary>
    public static void MovToControl(X86Cpu c, ref MicroOp op)
    {
        if (!c.RequireRing0())
        {
            return;
        }

        uint value = c.Gpr(op.Source);
        if (op.Kind == 1)
        {
            c.Dr[op.Destination] = value;
            return;
        }

        switch (op.Destination)
        {
            case 0: c.WriteCr0(value); break;
            case 2: c.Cr2 = value; break;
            case 3: c.WriteCr3(value); break;
            case 4: c.WriteCr4(value); break;
            default: c.RaiseFault(Vector.UD); break;
        }
    }

    public static void MovFromControl(X86Cpu c, ref MicroOp op)
    {
        if (!c.RequireRing0())
        {
            return;
        }

        if (op.Kind == 1)
        {
            c.Gpr(op.Destination) = c.Dr[op.Source];
            return;
        }

        switch (op.Source)
        {
            case 0: c.Gpr(op.Destination) = c.Cr0; break;
            case 2: c.Gpr(op.Destination) = c.Cr2; break;
            case 3: c.Gpr(op.Destination) = c.Cr3; break;
            case 4: c.Gpr(op.Destination) = c.Cr4; break;
            default: c.RaiseFault(Vector.UD); break;
        }
    }

    /// <summary>LAR (Kind 0) / LSL (Kind 1): ZF set and the rights or limit loaded when the descriptor is visible at CPL/RPL.</summary>
    public static void LoadAccessRights(X86Cpu c, ref MicroOp op)
    {
        if (!c.ProtectedMode || (c.SystemFlags & Flags.VM) != 0)
        {
            c.RaiseFault(Vector.UD);
            return;
        }

        if (!ReadSelectorOperand(c, ref op, out ushort selector))
        {
            return;
        }

        if (!Visible(c, selector, forLar: op.Kind == 0, out var descriptor, out uint high))
        {
            c.SetFlag(Flags.ZF, false);
            return;
        }

        c.SetFlag(Flags.ZF, true);
        uint value = op.Kind == 0 ? high & 0x00F0FF00 : descriptor.Limit;
        c.WriteRegister(op.Destination, op.Size, value);
    }

    private static bool Visible(X86Cpu c, ushort selector, bool forLar, out SegmentRegister descriptor, out uint high)
    {
        descriptor = default;
        high = 0;
        if ((selector & Selector.NullMask) == 0 || !c.DescriptorAddress(selector, out uint address))
        {
            return false;
        }

        uint low = c.ReadSystem(address, 4);
        high = c.ReadSystem(address + 4, 4);
        if (c.FaultPending)
        {
            return false;
        }

        descriptor = X86Cpu.DecodeDescriptor(selector, low, high);
        ushort a = descriptor.Attributes;
        if ((a & Descriptor.CodeOrData) == 0)
        {
            int type = a & Descriptor.TypeMask;
            bool allowed = forLar
                ? type is 1 or 2 or 3 or 4 or 5 or 9 or 11 or 12
                : type is 1 or 2 or 3 or 9 or 11;
            if (!allowed)
            {
                return false;
            }
        }

        bool conformingCode = (a & (Descriptor.CodeOrData | Descriptor.Code | Descriptor.ExpandDownOrConforming)) ==
            (Descriptor.CodeOrData | Descriptor.Code | Descriptor.ExpandDownOrConforming);
        int rpl = selector & Selector.RplMask;
        return conformingCode || (descriptor.Dpl >= c.Cpl && descriptor.Dpl >= rpl);
    }

    /// <summary>VERR (Kind 0) / VERW (Kind 1).</summary>
    public static void Verify(X86Cpu c, ref MicroOp op)
    {
        if (!c.ProtectedMode || (c.SystemFlags & Flags.VM) != 0)
        {
            c.RaiseFault(Vector.UD);
            return;
        }

        if (!ReadSelectorOperand(c, ref op, out ushort selector))
        {
            return;
        }

        bool ok = Visible(c, selector, forLar: true, out var descriptor, out _) && (descriptor.Attributes & Descriptor.CodeOrData) != 0;
        if (ok)
        {
            bool code = (descriptor.Attributes & Descriptor.Code) != 0;
            bool rw = (descriptor.Attributes & Descriptor.WritableOrReadable) != 0;
            ok = op.Kind == 0 ? !code || rw : !code && rw;
        }

        c.SetFlag(Flags.ZF, ok);
    }

    public static void ArplRR(X86Cpu c, ref MicroOp op)
    {
        uint destination = c.ReadRegister(op.Destination, 2);
        uint adjusted = Arpl(c, destination, c.ReadRegister(op.Source, 2));
        c.WriteRegister(op.Destination, 2, adjusted);
    }

    public static void ArplMR(X86Cpu c, ref MicroOp op)
    {
        uint address = c.EffectiveAddress(ref op);
        uint destination = c.Read16(op.Segment, address);
        if (c.FaultPending)
        {
            return;
        }

        uint flags = c.Eflags;
        uint adjusted = Arpl(c, destination, c.ReadRegister(op.Source, 2));
        c.Write16(op.Segment, address, adjusted);
        if (c.FaultPending)
        {
            c.Eflags = flags;
        }
    }

    private static uint Arpl(X86Cpu c, uint destination, uint source)
    {
        if (!c.ProtectedMode || (c.SystemFlags & Flags.VM) != 0)
        {
            c.RaiseFault(Vector.UD);
            return destination;
        }

        bool raise = (destination & 3) < (source & 3);
        c.SetFlag(Flags.ZF, raise);
        return raise ? (destination & ~3u) | (source & 3) : destination;
    }
}

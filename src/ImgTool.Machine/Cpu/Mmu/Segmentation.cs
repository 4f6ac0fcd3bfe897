namespace ImgTool.Machine.Cpu;

/// <summary>
/// Segment register loads with the protected-mode checks of SDM vol. 2 (MOV, POP, LDS/LES/LFS/LGS/LSS, far
/// JMP/CALL/RET, IRET) and vol. 3, 5.5-5.8: descriptor table bounds, null selectors, type, DPL/RPL/CPL,
/// presence; and the accessed bit written back to the descriptor, as the processor does.
/// </summary>
internal sealed partial class X86Cpu
{
    /// <summary>Every write of a segment register goes here, so the fast-path data and CPL follow.</summary>
    internal void SetSegment(int segment, in SegmentRegister value)
    {
        S[segment] = value;
        RefreshSegment(segment);
        if (segment == CS)
        {
            UpdateCpl();
            EndBlock = true;
        }
    }

    internal void LoadRealSegment(int segment, ushort selector)
    {
        // Real and virtual-8086 mode change only selector and base; the hidden limit stays (big-real mode relies on it).
        S[segment].Selector = selector;
        S[segment].Base = (uint)selector << 4;
        RefreshSegment(segment);
        if (segment == CS)
        {
            EndBlock = true;
        }
    }

    /// <summary>Reads and decodes a GDT/LDT descriptor; false with #GP (or the given vector) when outside the table.</summary>
    internal bool ReadDescriptor(ushort selector, out SegmentRegister descriptor, uint ext = 0, Vector fault = Vector.GP)
    {
        descriptor = default;
        if (!DescriptorAddress(selector, out uint address))
        {
            RaiseFault(fault, (selector & Selector.NullMask) | ext);
            return false;
        }

        uint low = ReadSystem(address, 4);
        uint high = ReadSystem(address + 4, 4);
        if (FaultPending)
        {
            return false;
        }

        descriptor = DecodeDescriptor(selector, low, high);
        return true;
    }

    internal static SegmentRegister DecodeDescriptor(ushort selector, uint low, uint high)
    {
        uint limit = (low & 0xFFFF) | (high & 0x000F0000);
        if ((high & 0x00800000) != 0)
        {
            limit = (limit << 12) | 0xFFF;
        }

        return new SegmentRegister
        {
            Selector = selector,
            Base = (low >> 16) | ((high & 0xFF) << 16) | (high & 0xFF000000),
            Limit = limit,
            Attributes = (ushort)(((high >> 8) & 0xFF) | ((high >> 8) & 0xF000)),
        };
    }

    /// <summary>The linear address of a selector's descriptor; false when the table does not reach it.</summary>
    internal bool DescriptorAddress(ushort selector, out uint address)
    {
        uint index = (uint)selector & Selector.IndexMask;
        bool local = (selector & Selector.TableIndicator) != 0;
        if (local && (Ldtr.Selector & Selector.NullMask) == 0)
        {
            address = 0;
            return false;
        }

        uint tableBase = local ? Ldtr.Base : GdtBase;
        uint tableLimit = local ? Ldtr.Limit : GdtLimit;
        address = tableBase + index;
        return index + 7 <= tableLimit;
    }

    /// <summary>Sets the accessed bit of a code or data descriptor in its table (SDM vol. 3, 3.4.5.1).</summary>
    internal void SetAccessed(ushort selector, ref SegmentRegister descriptor)
    {
        if ((descriptor.Attributes & (Descriptor.CodeOrData | Descriptor.Accessed)) != Descriptor.CodeOrData || !DescriptorAddress(selector, out uint address))
        {
            return;
        }

        descriptor.Attributes |= Descriptor.Accessed;
        uint typeByte = ReadSystem(address + 5, 1);
        WriteSystem(address + 5, 1, typeByte | Descriptor.Accessed);
    }

    /// <summary>MOV/POP/LxS to a data or stack segment register (SDM vol. 2, MOV: the protected-mode checks).</summary>
    internal bool LoadSegment(int segment, ushort selector)
    {
        if (!ProtectedMode || (_eflags & Flags.VM) != 0)
        {
            LoadRealSegment(segment, selector);
            return true;
        }

        uint error = selector & Selector.NullMask;
        if ((selector & Selector.NullMask) == 0)
        {
            if (segment == SS)
            {
                RaiseFault(Vector.GP, 0);
                return false;
            }

            // A null selector loads an unusable segment; an access through it raises #GP(0).
            SetSegment(segment, new SegmentRegister { Selector = selector });
            return true;
        }

        if (!ReadDescriptor(selector, out var descriptor))
        {
            return false;
        }

        ushort a = descriptor.Attributes;
        int rpl = selector & Selector.RplMask;
        int dpl = descriptor.Dpl;
        bool isSegment = (a & Descriptor.CodeOrData) != 0;
        bool code = (a & Descriptor.Code) != 0;
        if (segment == SS)
        {
            if (!isSegment || code || (a & Descriptor.WritableOrReadable) == 0 || rpl != Cpl || dpl != Cpl)
            {
                RaiseFault(Vector.GP, error);
                return false;
            }

            if ((a & Descriptor.Present) == 0)
            {
                RaiseFault(Vector.SS, error);
                return false;
            }
        }
        else
        {
            bool readable = isSegment && (!code || (a & Descriptor.WritableOrReadable) != 0);
            bool conformingCode = code && (a & Descriptor.ExpandDownOrConforming) != 0;
            if (!readable || (!conformingCode && (rpl > dpl || Cpl > dpl)))
            {
                RaiseFault(Vector.GP, error);
                return false;
            }

            if ((a & Descriptor.Present) == 0)
            {
                RaiseFault(Vector.NP, error);
                return false;
            }
        }

        SetAccessed(selector, ref descriptor);
        SetSegment(segment, descriptor);
        return true;
    }

    /// <summary>
    /// Loads CS for a far JMP/CALL/RET or IRET to a code segment at privilege 'newCpl' (SDM vol. 2, JMP/CALL:
    /// conforming and non-conforming rules). Call gates and task switches stop the run with a diagnosis.
    /// </summary>
    internal bool CheckCodeSegment(ushort selector, int newCpl, bool isReturn, out SegmentRegister descriptor)
    {
        descriptor = default;
        if ((selector & Selector.NullMask) == 0)
        {
            RaiseFault(Vector.GP, 0);
            return false;
        }

        if (!ReadDescriptor(selector, out descriptor))
        {
            return false;
        }

        ushort a = descriptor.Attributes;
        uint error = selector & Selector.NullMask;
        if ((a & Descriptor.CodeOrData) == 0)
        {
            int type = a & Descriptor.TypeMask;
            string what = type is Descriptor.CallGate16 or Descriptor.CallGate32 ? "call gate" : type == Descriptor.TaskGate ? "task gate" : "TSS";
            if (type is Descriptor.CallGate16 or Descriptor.CallGate32 or Descriptor.TaskGate or Descriptor.Tss16Available or Descriptor.Tss32Available)
            {
                Unimplemented($"far transfer through a {what} (selector {selector:X4})");
                return false;
            }

            RaiseFault(Vector.GP, error);
            return false;
        }

        if ((a & Descriptor.Code) == 0)
        {
            RaiseFault(Vector.GP, error);
            return false;
        }

        int rpl = selector & Selector.RplMask;
        int dpl = descriptor.Dpl;
        bool conforming = (a & Descriptor.ExpandDownOrConforming) != 0;
        if (isReturn)
        {
            // RET/IRET: RPL is the privilege returned to; it may not be inner to CPL.
            if (rpl < Cpl || (conforming ? dpl > rpl : dpl != rpl))
            {
                RaiseFault(Vector.GP, error);
                return false;
            }
        }
        else if (conforming ? dpl > Cpl : rpl > Cpl || dpl != Cpl)
        {
            RaiseFault(Vector.GP, error);
            return false;
        }

        if ((a & Descriptor.Present) == 0)
        {
            RaiseFault(Vector.NP, error);
            return false;
        }

        SetAccessed(selector, ref descriptor);
        descriptor.Selector = (ushort)((selector & Selector.NullMask) | (uint)newCpl);
        return true;
    }

    /// <summary>After a return to an outer level: data segments the new level may not use become null (SDM vol. 2, RET/IRET).</summary>
    internal void InvalidateSegmentsForOuterLevel()
    {
        foreach (int segment in (ReadOnlySpan<int>)[ES, DS, FS, GS])
        {
            ref readonly SegmentRegister s = ref S[segment];
            bool conformingCode = (s.Attributes & (Descriptor.Code | Descriptor.ExpandDownOrConforming)) == (Descriptor.Code | Descriptor.ExpandDownOrConforming);
            if ((s.Attributes & Descriptor.CodeOrData) != 0 && !conformingCode && s.Dpl < Cpl)
            {
                SetSegment(segment, new SegmentRegister { Selector = 0 });
            }
        }
    }

    internal uint StackPointer => Stack32 ? R[ESP] : R[ESP] & 0xFFFF;

    internal void SetStackPointer(uint value)
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

    /// <summary>Pushes a value of sizeBytes; false (ESP unchanged) when the write faulted.</summary>
    internal bool Push(uint value, int sizeBytes)
    {
        uint sp = StackPointer - (uint)sizeBytes;
        if (!Stack32)
        {
            sp &= 0xFFFF;
        }

        Write(SS, sp, sizeBytes, value);
        if (FaultPending)
        {
            return false;
        }

        SetStackPointer(sp);
        return true;
    }

    /// <summary>Reads the stack item at byte offset 'depth' above the stack pointer without popping.</summary>
    internal bool PeekStack(uint depth, int sizeBytes, out uint value)
    {
        uint sp = StackPointer + depth;
        if (!Stack32)
        {
            sp &= 0xFFFF;
        }

        value = Read(SS, sp, sizeBytes);
        return !FaultPending;
    }

    internal void DropStack(uint bytes) => SetStackPointer(StackPointer + bytes);

    internal bool Pop(int sizeBytes, out uint value)
    {
        if (!PeekStack(0, sizeBytes, out value))
        {
            return false;
        }

        DropStack((uint)sizeBytes);
        return true;
    }
}

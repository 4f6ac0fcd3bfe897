using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>
/// ROL ROR RCL RCR SHL SHR SAL SAR (group 2 reg-field order in Kind) and SHLD/SHRD. The count (1, CL or an
/// immediate by Size2) is masked to 5 bits; a masked count of 0 changes neither operand nor flags (SDM vol. 2, SAL/SAR/SHL/SHR).
/// </summary>
internal static class ShiftOps
{
    private static uint Count(X86Cpu c, ref MicroOp op) => (op.Size2 == 1 ? c.Gpr(X86Cpu.ECX) : op.Immediate) & 0x1F;

    public static void ShiftR(X86Cpu c, ref MicroOp op)
    {
        uint count = Count(c, ref op);
        if (count != 0)
        {
            c.WriteRegister(op.Destination, op.Size, Shift(c, op.Kind, c.ReadRegister(op.Destination, op.Size), count, op.Size));
        }
    }

    public static void ShiftM(X86Cpu c, ref MicroOp op)
    {
        uint offset = c.EffectiveAddress(ref op);
        uint value = c.Read(op.Segment, offset, op.Size);
        uint count = Count(c, ref op);
        if (c.FaultPending || count == 0)
        {
            return;
        }

        uint flags = c.Eflags;
        uint result = Shift(c, op.Kind, value, count, op.Size);
        c.Write(op.Segment, offset, op.Size, result);
        if (c.FaultPending)
        {
            c.Eflags = flags;
        }
    }

    /// <summary>Shifts or rotates value by a non-zero count, setting the flags as a P6 does.</summary>
    internal static uint Shift(X86Cpu c, int operation, uint value, uint count, int sizeBytes)
    {
        int bits = sizeBytes * 8;
        uint mask = X86Cpu.SizeMask(sizeBytes);
        uint sign = X86Cpu.SignBit(sizeBytes);
        value &= mask;
        uint result;
        switch (operation)
        {
            case 0: // ROL: CF and OF only
            {
                int n = (int)(count % (uint)bits);
                result = n == 0 ? value : ((value << n) | (value >> (bits - n))) & mask;
                bool carry = (result & 1) != 0;
                c.SetCarryOverflow((carry ? Flags.CF : 0) | (((result & sign) != 0) != carry ? Flags.OF : 0));
                return result;
            }

            case 1: // ROR
            {
                int n = (int)(count % (uint)bits);
                result = n == 0 ? value : ((value >> n) | (value << (bits - n))) & mask;
                c.SetCarryOverflow(((result & sign) != 0 ? Flags.CF : 0) | ((((result << 1) ^ result) & sign) != 0 ? Flags.OF : 0));
                return result;
            }

            case 2: // RCL: a (bits + 1)-bit rotation through CF
            {
                int n = (int)(count % (uint)(bits + 1));
                ulong wide = ((c.CarryFlag ? 1ul : 0) << bits) | value;
                ulong full = (1UL << (bits + 1)) - 1;
                if (n != 0)
                {
                    wide = ((wide << n) | (wide >> (bits + 1 - n))) & full;
                }

                result = (uint)wide & mask;
                bool carry = ((wide >> bits) & 1) != 0;
                c.SetFlag(Flags.CF, carry);
                c.SetFlag(Flags.OF, ((result & sign) != 0) != carry);
                return result;
            }

            case 3: // RCR
            {
                int n = (int)(count % (uint)(bits + 1));
                bool carryIn = c.CarryFlag;
                ulong wide = ((carryIn ? 1ul : 0) << bits) | value;
                ulong full = (1UL << (bits + 1)) - 1;
                bool overflow = ((value & sign) != 0) != carryIn;
                if (n != 0)
                {
                    wide = ((wide >> n) | (wide << (bits + 1 - n))) & full;
                }

                result = (uint)wide & mask;
                c.SetFlag(Flags.CF, ((wide >> bits) & 1) != 0);
                c.SetFlag(Flags.OF, n == 1 ? overflow : (((result << 1) ^ result) & sign) != 0);
                return result;
            }

            case 4: // SHL
            case 6: // SAL (undocumented alias)
            {
                ulong wide = (ulong)value << (int)count;
                result = (uint)wide & mask;
                bool carry = ((wide >> bits) & 1) != 0;
                c.SetLazy(FlagOp.Shift, (carry ? Flags.CF : 0) | (((result & sign) != 0) != carry ? Flags.OF : 0), 0, result, sizeBytes);
                return result;
            }

            case 5: // SHR
            {
                ulong beforeLast = (ulong)value >> (int)(count - 1);
                bool carry = (beforeLast & 1) != 0;
                result = (uint)((ulong)value >> (int)count);

                // OF is the operand's MSB for a count of 1; for larger counts it is undefined and computed the same way.
                c.SetLazy(FlagOp.Shift, (carry ? Flags.CF : 0) | ((beforeLast & sign) != 0 ? Flags.OF : 0), 0, result, sizeBytes);
                return result;
            }

            default: // SAR
            {
                long signed = X86Cpu.SignExtend(value, sizeBytes);
                int shift = (int)Math.Min(count, 31u);
                bool carry = ((signed >> (int)Math.Min(count - 1, 31u)) & 1) != 0;
                result = (uint)(signed >> shift) & mask;
                c.SetLazy(FlagOp.Shift, carry ? Flags.CF : 0, 0, result, sizeBytes);
                return result;
            }
        }
    }

    private static uint DoubleCount(X86Cpu c, ref MicroOp op) => (op.Size2 == 1 ? c.Gpr(X86Cpu.ECX) : op.Immediate) & 0x1F;

    public static void DoubleShiftR(X86Cpu c, ref MicroOp op)
    {
        uint count = DoubleCount(c, ref op);
        if (count != 0)
        {
            c.WriteRegister(op.Destination, op.Size, DoubleShift(c, op.Kind == 0, c.ReadRegister(op.Destination, op.Size), c.ReadRegister(op.Source, op.Size), count, op.Size));
        }
    }

    public static void DoubleShiftM(X86Cpu c, ref MicroOp op)
    {
        uint offset = c.EffectiveAddress(ref op);
        uint value = c.Read(op.Segment, offset, op.Size);
        uint count = DoubleCount(c, ref op);
        if (c.FaultPending || count == 0)
        {
            return;
        }

        uint flags = c.Eflags;
        uint result = DoubleShift(c, op.Kind == 0, value, c.ReadRegister(op.Source, op.Size), count, op.Size);
        c.Write(op.Segment, offset, op.Size, result);
        if (c.FaultPending)
        {
            c.Eflags = flags;
        }
    }

    /// <summary>SHLD/SHRD (SDM vol. 2) with a non-zero count; 16-bit counts above 16 behave as on a P6 (dest:src:src).</summary>
    private static uint DoubleShift(X86Cpu c, bool left, uint destination, uint source, uint count, int sizeBytes)
    {
        int bits = sizeBytes * 8;
        uint mask = X86Cpu.SizeMask(sizeBytes);
        destination &= mask;
        source &= mask;
        uint result;
        bool carry;
        if (left)
        {
            ulong wide = ((ulong)destination << bits) | source;
            if (bits == 16)
            {
                wide = (wide << 16) | source;
                result = (uint)(wide << (int)count >> 32) & mask;
                carry = ((wide >> (48 - (int)count)) & 1) != 0;
            }
            else
            {
                result = (uint)((wide << (int)count) >> bits) & mask;
                carry = ((wide >> (2 * bits - (int)count)) & 1) != 0;
            }
        }
        else
        {
            ulong wide = ((ulong)source << bits) | destination;
            if (bits == 16)
            {
                wide |= (ulong)destination << 32;
            }

            result = (uint)(wide >> (int)count) & mask;
            carry = ((wide >> ((int)count - 1)) & 1) != 0;
        }

        bool overflow = ((result ^ destination) & X86Cpu.SignBit(sizeBytes)) != 0;
        c.SetResultFlags(result, sizeBytes, (carry ? Flags.CF : 0) | (overflow ? Flags.OF : 0));
        return result;
    }
}

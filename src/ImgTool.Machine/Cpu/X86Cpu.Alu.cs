using System.Runtime.CompilerServices;

namespace ImgTool.Machine.Cpu;

/// <summary>Arithmetic and flags, after the pseudo-code of SDM vol. 2 for each instruction.</summary>
internal sealed partial class X86Cpu
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetResultFlags(uint result, int sizeBytes, uint other)
    {
        result &= SizeMask(sizeBytes);
        uint flags = (Eflags & ~ArithFlags) | other | (uint)ParityBit(result);
        if (result == 0)
        {
            flags |= ZF;
        }

        if ((result & SignBit(sizeBytes)) != 0)
        {
            flags |= SF;
        }

        Eflags = flags;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint Add(uint a, uint b, uint carry, int sizeBytes)
    {
        uint mask = SizeMask(sizeBytes);
        ulong wide = (ulong)(a & mask) + (b & mask) + carry;
        uint result = (uint)wide & mask;
        uint other = ((wide >> (sizeBytes * 8)) & 1) != 0 ? CF : 0;
        other |= ((a ^ b ^ result) & 0x10) != 0 ? AF : 0;
        other |= ((a ^ result) & (b ^ result) & SignBit(sizeBytes)) != 0 ? OF : 0;
        SetResultFlags(result, sizeBytes, other);
        return result;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint Sub(uint a, uint b, uint borrow, int sizeBytes)
    {
        uint mask = SizeMask(sizeBytes);
        a &= mask;
        b &= mask;
        uint result = (a - b - borrow) & mask;
        uint other = (ulong)a < (ulong)b + borrow ? CF : 0;
        other |= ((a ^ b ^ result) & 0x10) != 0 ? AF : 0;
        other |= ((a ^ b) & (a ^ result) & SignBit(sizeBytes)) != 0 ? OF : 0;
        SetResultFlags(result, sizeBytes, other);
        return result;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint Logic(uint result, int sizeBytes)
    {
        // AF is undefined after logic operations; a P6 clears it.
        SetResultFlags(result, sizeBytes, 0);
        return result & SizeMask(sizeBytes);
    }

    /// <summary>The eight classic ALU operations in opcode order (ADD OR ADC SBB AND SUB XOR CMP).</summary>
    private uint AluOp(int operation, uint a, uint b, int sizeBytes) => operation switch
    {
        0 => Add(a, b, 0, sizeBytes),
        1 => Logic(a | b, sizeBytes),
        2 => Add(a, b, Eflags & CF, sizeBytes),
        3 => Sub(a, b, Eflags & CF, sizeBytes),
        4 => Logic(a & b, sizeBytes),
        5 => Sub(a, b, 0, sizeBytes),
        6 => Logic(a ^ b, sizeBytes),
        _ => Sub(a, b, 0, sizeBytes),
    };

    private uint IncDec(uint a, bool decrement, int sizeBytes)
    {
        // INC and DEC leave CF alone.
        uint carry = Eflags & CF;
        uint result = decrement ? Sub(a, 1, 0, sizeBytes) : Add(a, 1, 0, sizeBytes);
        Eflags = (Eflags & ~CF) | carry;
        return result;
    }

    private void SetFlag(uint flag, bool value) => Eflags = value ? Eflags | flag : Eflags & ~flag;

    /// <summary>ROL ROR RCL RCR SHL SHR SAL SAR (group 2, reg field order); count masked to 5 bits.</summary>
    private uint Shift(int operation, uint value, uint count, int sizeBytes)
    {
        int bits = sizeBytes * 8;
        uint mask = SizeMask(sizeBytes);
        uint sign = SignBit(sizeBytes);
        value &= mask;
        count &= 0x1F;
        if (count == 0)
        {
            return value;
        }

        uint result;
        switch (operation)
        {
            case 0: // ROL
            {
                int n = (int)(count % (uint)bits);
                result = n == 0 ? value : ((value << n) | (value >> (bits - n))) & mask;
                bool carry = (result & 1) != 0;
                SetFlag(CF, carry);
                SetFlag(OF, ((result & sign) != 0) != carry);
                return result;
            }

            case 1: // ROR
            {
                int n = (int)(count % (uint)bits);
                result = n == 0 ? value : ((value >> n) | (value << (bits - n))) & mask;
                SetFlag(CF, (result & sign) != 0);
                SetFlag(OF, (((result << 1) ^ result) & sign) != 0);
                return result;
            }

            case 2: // RCL: rotate through CF, a (bits + 1)-bit rotation
            {
                int n = (int)(count % (uint)(bits + 1));
                ulong wide = ((ulong)(Eflags & CF) << bits) | value;
                ulong full = (1UL << (bits + 1)) - 1;
                if (n != 0)
                {
                    wide = ((wide << n) | (wide >> (bits + 1 - n))) & full;
                }

                result = (uint)wide & mask;
                bool carry = ((wide >> bits) & 1) != 0;
                SetFlag(CF, carry);
                SetFlag(OF, ((result & sign) != 0) != carry);
                return result;
            }

            case 3: // RCR
            {
                int n = (int)(count % (uint)(bits + 1));
                ulong wide = ((ulong)(Eflags & CF) << bits) | value;
                ulong full = (1UL << (bits + 1)) - 1;
                bool overflow = ((value & sign) != 0) != ((Eflags & CF) != 0);
                if (n != 0)
                {
                    wide = ((wide >> n) | (wide << (bits + 1 - n))) & full;
                }

                result = (uint)wide & mask;
                SetFlag(CF, ((wide >> bits) & 1) != 0);
                SetFlag(OF, n == 1 ? overflow : (((result << 1) ^ result) & sign) != 0);
                return result;
            }

            case 4: // SHL
            case 6: // SAL (undocumented alias)
            {
                ulong wide = (ulong)value << (int)count;
                result = (uint)wide & mask;
                bool carry = ((wide >> bits) & 1) != 0;
                SetResultFlags(result, sizeBytes, (carry ? CF : 0) | (((result & sign) != 0) != carry ? OF : 0));
                return result;
            }

            case 5: // SHR
            {
                ulong beforeLast = (ulong)value >> (int)(count - 1);
                bool carry = (beforeLast & 1) != 0;
                result = (uint)((ulong)value >> (int)count);

                // OF is defined for a count of 1 (the operand's MSB); for larger counts it is undefined
                // and computed as the 286 does: MSB before the last step XOR MSB of the result (0).
                SetResultFlags(result, sizeBytes, (carry ? CF : 0) | ((beforeLast & sign) != 0 ? OF : 0));
                return result;
            }

            default: // SAR
            {
                long signed = SignExtend(value, sizeBytes);
                bool carry = ((signed >> (int)(count - 1)) & 1) != 0;
                result = (uint)(signed >> (int)count) & mask;
                SetResultFlags(result, sizeBytes, carry ? CF : 0);
                return result;
            }
        }
    }

    /// <summary>SHLD/SHRD (SDM vol. 2): the count is masked to 5 bits; 0 changes nothing.</summary>
    private uint DoubleShift(bool left, uint destination, uint source, uint count, int sizeBytes)
    {
        int bits = sizeBytes * 8;
        uint mask = SizeMask(sizeBytes);
        count &= 0x1F;
        if (count == 0)
        {
            return destination & mask;
        }

        destination &= mask;
        source &= mask;
        uint result;
        bool carry;
        if (left)
        {
            // Concatenate dest:source:source so counts above the operand width behave as on a P6.
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

        bool overflow = ((result ^ destination) & SignBit(sizeBytes)) != 0;
        SetResultFlags(result, sizeBytes, (carry ? CF : 0) | (overflow ? OF : 0));
        return result;
    }
}

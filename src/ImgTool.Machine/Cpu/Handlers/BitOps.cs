using System.Numerics;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>BT BTS BTR BTC (Kind 0-3) with a register or immediate bit offset, BSF and BSR.</summary>
internal static class BitOps
{
    public static void BitTestR(X86Cpu c, ref MicroOp op)
    {
        int bits = op.Size * 8;
        uint offset = (op.Size2 == 1 ? c.ReadRegister(op.Source, op.Size) : op.Immediate) & (uint)(bits - 1);
        uint value = c.ReadRegister(op.Destination, op.Size);
        uint bit = 1u << (int)offset;
        c.SetFlag(Flags.CF, (value & bit) != 0);
        if (op.Kind != 0)
        {
            c.WriteRegister(op.Destination, op.Size, Apply(op.Kind, value, bit));
        }
    }

    public static void BitTestM(X86Cpu c, ref MicroOp op)
    {
        int size = op.Size;
        int bits = size * 8;
        uint address = c.EffectiveAddress(ref op);
        uint offset;
        if (op.Size2 == 1)
        {
            // A register bit offset is signed and addresses memory beyond the operand (SDM vol. 2, BT).
            int signed = X86Cpu.SignExtend(c.ReadRegister(op.Source, size), size);
            address += (uint)((signed >> (size == 2 ? 4 : 5)) * size);
            if (!op.Address32)
            {
                address &= 0xFFFF;
            }

            offset = (uint)signed & (uint)(bits - 1);
        }
        else
        {
            offset = op.Immediate & (uint)(bits - 1);
        }

        uint value = c.Read(op.Segment, address, size);
        if (c.FaultPending)
        {
            return;
        }

        uint bit = 1u << (int)offset;
        if (op.Kind != 0)
        {
            c.Write(op.Segment, address, size, Apply(op.Kind, value, bit));
            if (c.FaultPending)
            {
                return;
            }
        }

        c.SetFlag(Flags.CF, (value & bit) != 0);
    }

    private static uint Apply(int operation, uint value, uint bit) => operation switch
    {
        1 => value | bit,
        2 => value & ~bit,
        _ => value ^ bit,
    };

    public static void ScanRR(X86Cpu c, ref MicroOp op) => Scan(c, ref op, c.ReadRegister(op.Source, op.Size));

    public static void ScanRM(X86Cpu c, ref MicroOp op)
    {
        uint source = c.Read(op.Segment, c.EffectiveAddress(ref op), op.Size);
        if (!c.FaultPending)
        {
            Scan(c, ref op, source);
        }
    }

    private static void Scan(X86Cpu c, ref MicroOp op, uint source)
    {
        source &= X86Cpu.SizeMask(op.Size);
        if (source == 0)
        {
            // The destination is left unchanged on a P6 (architecturally undefined); ZF set.
            c.SetFlag(Flags.ZF, true);
            return;
        }

        c.SetFlag(Flags.ZF, false);
        uint index = op.Kind == 0 ? (uint)BitOperations.TrailingZeroCount(source) : (uint)(31 - BitOperations.LeadingZeroCount(source));
        c.WriteRegister(op.Destination, op.Size, index);
    }
}

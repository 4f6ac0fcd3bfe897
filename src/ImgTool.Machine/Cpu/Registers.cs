using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu;

/// <summary>General-register access by encoding number and operand size, and effective addresses.</summary>
internal sealed partial class X86Cpu
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref uint Gpr(int register) => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(R), register);

    /// <summary>Reads a register of sizeBytes: 8-bit registers by encoding number (AH..BH are 4-7).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal uint ReadRegister(int register, int sizeBytes)
    {
        if (sizeBytes == 4)
        {
            return Gpr(register);
        }

        if (sizeBytes == 2)
        {
            return Gpr(register) & 0xFFFF;
        }

        return register < 4 ? Gpr(register) & 0xFF : (Gpr(register - 4) >> 8) & 0xFF;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void WriteRegister(int register, int sizeBytes, uint value)
    {
        if (sizeBytes == 4)
        {
            Gpr(register) = value;
        }
        else if (sizeBytes == 2)
        {
            ref uint slot = ref Gpr(register);
            slot = (slot & 0xFFFF0000) | (value & 0xFFFF);
        }
        else if (register < 4)
        {
            ref uint slot = ref Gpr(register);
            slot = (slot & 0xFFFFFF00) | (value & 0xFF);
        }
        else
        {
            ref uint slot = ref Gpr(register - 4);
            slot = (slot & 0xFFFF00FF) | ((value & 0xFF) << 8);
        }
    }

    /// <summary>The memory operand's offset: base + index * scale + displacement, wrapped at 64 KiB for 16-bit addressing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal uint EffectiveAddress(ref MicroOp op)
    {
        uint offset = Gpr(op.Base) + (Gpr(op.Index) << op.Scale) + op.Displacement;
        return op.Address32 ? offset : offset & 0xFFFF;
    }

    /// <summary>Loads EFLAGS from POPF/IRET/SAHF-like sources with the privilege rules for IF and IOPL (SDM vol. 2, POPF).</summary>
    internal void WriteFlags(uint value, int sizeBytes, bool isIret = false)
    {
        uint writable = Flags.Arithmetic | Flags.TF | Flags.DF | Flags.NT;
        if (!ProtectedMode || Cpl == 0)
        {
            writable |= Flags.IF | Flags.IOPL;
        }
        else if (Cpl <= (int)((_eflags & Flags.IOPL) >> Flags.IoplShift))
        {
            writable |= Flags.IF;
        }

        if (sizeBytes == 4)
        {
            writable |= Flags.AC | Flags.ID;
            if (isIret)
            {
                writable |= Flags.RF;
            }
        }
        else
        {
            writable &= 0xFFFF;
        }

        uint current = Eflags;
        Eflags = (current & ~writable) | (value & writable);
    }
}

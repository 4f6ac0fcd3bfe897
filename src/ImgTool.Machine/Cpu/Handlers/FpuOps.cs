using Iced.Intel;
using ImgTool.Machine.Cpu.Decode;
using ImgTool.Machine.Cpu.X87;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>
/// The x87 escape opcodes (D8-DF), FXSAVE/FXRSTOR and WAIT: the CPU's part of the FPU protocol (CR0.EM, CR0.TS
/// and CR0.MP give #NM, SDM vol. 3, 2.5 and 13.5) before the <see cref="X87Fpu"/> runs the instruction.
/// </summary>
internal static class FpuOps
{
    /// <summary>Lowers an x87 instruction: its decoded form goes to the side table, the op keeps the index.</summary>
    public static unsafe bool TryLower(in Instruction i, ref MicroOp op, List<X87Instruction> table)
    {
        if (i.Encoding != EncodingKind.Legacy || !X87Instruction.TryLower(in i, out var lowered))
        {
            return false;
        }

        op.Table = table.Count;
        table.Add(lowered);

        // FSTENV/FLDENV/FSAVE/FRSTOR images have 16-bit layouts (14 and 94 bytes) with a 16-bit operand size.
        int bytes = i.MemorySize.GetSize();
        op.Size2 = (byte)(bytes is 14 or 94 ? 2 : 4);
        op.Handler = lowered.Operation == X87Operation.Wait ? &Wait : &Escape;
        return true;
    }

    public static void Escape(X86Cpu c, ref MicroOp op)
    {
        if ((c.Cr0 & (ControlBits.Cr0EM | ControlBits.Cr0TS)) != 0)
        {
            c.RaiseFault(Vector.NM);
            return;
        }

        c.ExecuteX87(ref op);
    }

    public static void Wait(X86Cpu c, ref MicroOp op)
    {
        if ((c.Cr0 & (ControlBits.Cr0MP | ControlBits.Cr0TS)) == (ControlBits.Cr0MP | ControlBits.Cr0TS))
        {
            c.RaiseFault(Vector.NM);
            return;
        }

        c.ExecuteX87(ref op);
    }
}

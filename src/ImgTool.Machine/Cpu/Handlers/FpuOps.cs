using Iced.Intel;
using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>
/// The x87 escape opcodes (D8-DF) and WAIT: the CPU's part of the FPU protocol (CR0.EM, CR0.TS and CR0.MP give
/// #NM, SDM vol. 3, 2.5 and 13.5) before the FPU itself runs the instruction.
/// </summary>
internal static class FpuOps
{
    public static unsafe bool TryLower(in Instruction i, ref MicroOp op, List<Instruction> table)
    {
        if (!IsX87(in i))
        {
            return false;
        }

        op.Table = table.Count;
        table.Add(i);
        op.Handler = &Escape;
        return true;
    }

    /// <summary>The x87 instructions: escape opcodes D8-DF (all named F...), and FXSAVE/FXRSTOR (0F AE /0, /1).</summary>
    private static bool IsX87(in Instruction i)
    {
        if (i.Encoding != EncodingKind.Legacy || i.Mnemonic is Mnemonic.Femms)
        {
            return false;
        }

        string name = i.Mnemonic.ToString();
        return name.Length > 1 && name[0] == 'F';
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

        c.ExecuteX87Wait();
    }
}

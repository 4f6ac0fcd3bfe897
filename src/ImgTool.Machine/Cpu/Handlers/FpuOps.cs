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
        var code = i.Code;
        if (!IsX87(in i))
        {
            return false;
        }

        op.Table = table.Count;
        table.Add(i);
        op.Handler = &Escape;
        _ = code;
        return true;
    }

    private static bool IsX87(in Instruction i)
    {
        uint opcode = i.OpCode.OpCode;
        return i.Encoding == EncodingKind.Legacy && i.OpCode.Table == OpCodeTableKind.Normal && opcode is >= 0xD8 and <= 0xDF;
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

using ImgTool.Machine.Cpu.Decode;
using ImgTool.Machine.Cpu.Handlers;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>Entry points of the handlers the translator recognises (function pointers compare only as addresses).</summary>
internal static unsafe class KnownHandlers
{
    public static readonly nint MovRR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MoveOps.MovRR;
    public static readonly nint MovRI = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MoveOps.MovRI;
    public static readonly nint Lea = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MoveOps.Lea;
    public static readonly nint ExtendR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MoveOps.ExtendR;
    public static readonly nint ExtendM = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MoveOps.ExtendM;
    public static readonly nint MovRM = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MoveOps.MovRM;
    public static readonly nint MovMR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MoveOps.MovMR;
    public static readonly nint MovMI = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MoveOps.MovMI;
    public static readonly nint AluRR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&AluOps.RR;
    public static readonly nint AluRI = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&AluOps.RI;
    public static readonly nint TestRR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&AluOps.TestRR;
    public static readonly nint TestRI = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&AluOps.TestRI;
    public static readonly nint IncDecR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&AluOps.IncDecR;
    public static readonly nint PushR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&StackOps.PushR;
    public static readonly nint PopR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&StackOps.PopR;
    public static readonly nint Jcc = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&ControlOps.Jcc;
    public static readonly nint AluRM = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&AluOps.RM;
    public static readonly nint AluMR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&AluOps.MR;
    public static readonly nint AluMI = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&AluOps.MI;
    public static readonly nint TestMR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&AluOps.TestMR;
    public static readonly nint TestMI = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&AluOps.TestMI;
    public static readonly nint ShiftR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&ShiftOps.ShiftR;
    public static readonly nint MultiplyTruncatedR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MulDivOps.MultiplyTruncatedR;
    public static readonly nint SetccR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MoveOps.SetccR;
    public static readonly nint CmovRR = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MoveOps.CmovRR;
    public static readonly nint CmovRM = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&MoveOps.CmovRM;
    public static readonly nint JmpRel = (nint)(delegate*<X86Cpu, ref MicroOp, void>)&ControlOps.JmpRel;
}

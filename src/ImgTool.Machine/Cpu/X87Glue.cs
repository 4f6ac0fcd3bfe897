using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu;

/// <summary>Placeholder until the x87 unit is merged: only what a kernel's FPU probe runs.</summary>
internal sealed partial class X86Cpu
{
    private ushort _fpuStatus, _fpuControl = 0x037F;

    private void ResetFpu()
    {
        _fpuStatus = 0;
        _fpuControl = 0x037F;
    }

    internal void ExecuteX87(ref MicroOp op)
    {
        var instruction = _code.X87Table[op.Table];
        switch (instruction.Mnemonic)
        {
            case Iced.Intel.Mnemonic.Fninit:
                ResetFpu();
                break;
            case Iced.Intel.Mnemonic.Fnstsw when instruction.Op0Kind == Iced.Intel.OpKind.Register:
                WriteRegister(EAX, 2, _fpuStatus);
                break;
            case Iced.Intel.Mnemonic.Fnstsw:
                Write16(op.Segment, EffectiveAddress(ref op), _fpuStatus);
                break;
            case Iced.Intel.Mnemonic.Fnstcw:
                Write16(op.Segment, EffectiveAddress(ref op), _fpuControl);
                break;
            case Iced.Intel.Mnemonic.Fldcw:
                _fpuControl = (ushort)Read16(op.Segment, EffectiveAddress(ref op));
                break;
            default:
                Unimplemented($"x87 instruction '{instruction}'");
                break;
        }
    }

    internal void ExecuteX87Wait()
    {
    }
}

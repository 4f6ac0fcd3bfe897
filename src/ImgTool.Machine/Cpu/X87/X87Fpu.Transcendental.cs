namespace ImgTool.Machine.Cpu.X87;

internal sealed partial class X87Fpu
{
    private X87Outcome TranscendentalUnary(X87Operation operation) => X87Outcome.InvalidOpcode;
    private X87Outcome TranscendentalPush(X87Operation operation) => X87Outcome.InvalidOpcode;
    private X87Outcome TranscendentalBinary(X87Operation operation) => X87Outcome.InvalidOpcode;
}

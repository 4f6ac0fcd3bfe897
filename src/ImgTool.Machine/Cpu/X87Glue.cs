using ImgTool.Machine.Cpu.Decode;
using ImgTool.Machine.Cpu.X87;

namespace ImgTool.Machine.Cpu;

/// <summary>The CPU side of the x87: operands at the instruction's effective address, AX and EFLAGS, and #MF.</summary>
internal sealed partial class X86Cpu
{
    private readonly X87Fpu _fpu = new();
    private readonly FpuBridge _fpuBridge;

    internal X87Fpu Fpu => _fpu;

    private void ResetFpu() => _fpu.Reset();

    internal void ExecuteX87(ref MicroOp op)
    {
        ref readonly X87Instruction instruction = ref System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_code.X87Table)[op.Table];
        uint offset = EffectiveAddress(ref op);
        var bridge = _fpuBridge;
        bridge.Set(op.Segment, offset);
        var context = new X87Context(ProtectedMode && (_eflags & Flags.VM) == 0, op.Size2 == 4, S[CS].Selector, StartEip, S[op.Segment].Selector, offset);
        X87Outcome outcome = _fpu.Execute(in instruction, bridge, in context);
        if (outcome == X87Outcome.MathFault && (Cr0 & ControlBits.Cr0NE) == 0 && CoprocessorError is { } ferr)
        {
            // CR0.NE clear: the error goes out on FERR# (IRQ 13 on a PC) instead of #MF, and the instruction goes on.
            ferr();
            outcome = _fpu.Execute(in instruction, bridge, in context, ignorePendingError: true);
        }

        switch (outcome)
        {
            case X87Outcome.Completed:
            case X87Outcome.MemoryFault:
                break;
            case X87Outcome.MathFault:
                RaiseFault(Vector.MF);
                break;
            case X87Outcome.GeneralProtection:
                RaiseFault(Vector.GP, 0);
                break;
            default:
                RaiseFault(Vector.UD);
                break;
        }
    }

    /// <summary>Memory operands, AX and EFLAGS for one x87 instruction.</summary>
    private sealed class FpuBridge(X86Cpu cpu) : IFpuHost
    {
        private int _segment;
        private uint _offset;

        public void Set(int segment, uint offset)
        {
            _segment = segment;
            _offset = offset;
        }

        public bool ReadOperand(int offsetBytes, Span<byte> destination) => cpu.ReadBytes(_segment, _offset + (uint)offsetBytes, destination);

        public bool WriteOperand(int offsetBytes, ReadOnlySpan<byte> source) => cpu.WriteBytes(_segment, _offset + (uint)offsetBytes, source);

        public ushort Ax
        {
            get => (ushort)cpu.R[EAX];
            set => cpu.WriteRegister(EAX, 2, value);
        }

        public uint Eflags
        {
            get => cpu.Eflags;
            set => cpu.Eflags = value;
        }
    }
}

using ImgTool.Machine.Cpu.Decode;

namespace ImgTool.Machine.Cpu.Handlers;

/// <summary>IN and OUT with an immediate port (Kind 0) or DX (Kind 1), after the I/O permission check.</summary>
internal static class IoOps
{
    private static ushort Port(X86Cpu c, ref MicroOp op) => (ushort)(op.Kind == 0 ? op.Immediate : c.Gpr(X86Cpu.EDX));

    public static void In(X86Cpu c, ref MicroOp op)
    {
        ushort port = Port(c, ref op);
        if (c.CheckIoPermission(port, op.Size))
        {
            c.WriteRegister(X86Cpu.EAX, op.Size, c.Io.In(port, op.Size));
        }
    }

    public static void Out(X86Cpu c, ref MicroOp op)
    {
        ushort port = Port(c, ref op);
        if (c.CheckIoPermission(port, op.Size))
        {
            c.Io.Out(port, op.Size, c.ReadRegister(X86Cpu.EAX, op.Size));
        }
    }
}

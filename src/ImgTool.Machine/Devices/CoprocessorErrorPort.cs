using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// The PC/AT's x87 error wiring (IBM PC/AT technical reference, "math coprocessor"): with CR0.NE clear an
/// unmasked x87 exception is not a #MF but FERR#, which the board routes to IRQ 13; the handler writes
/// port 0xF0, which drops IRQ 13 (and asserts IGNNE#, so the waiting instruction goes on). The CPU here lets the
/// instruction go on at once, as QEMU's does, so only the interrupt remains to model.
/// </summary>
internal sealed class CoprocessorErrorPort(Action<bool> setIrq13) : IPortDevice
{
    public const ushort Port = 0xF0;
    public const int Irq = 13;

    /// <summary>FERR# asserted by the CPU.</summary>
    public void RaiseError() => setIrq13(true);

    public uint Read(ushort offset, int sizeBytes) => 0xFF;

    public void Write(ushort offset, int sizeBytes, uint value) => setIrq13(false);
}

namespace ImgTool.Machine.Bus;

/// <summary>
/// A device's I/O port handlers. <c>offset</c> is the port minus the first port of the range the
/// device was mapped at (<see cref="IoBus.Map"/>), for every device: a device is written once, as its
/// datasheet's register table, wherever the board decodes it (COM1 at 0x3F8 or COM2 at 0x2F8, a PCI
/// I/O BAR wherever the BIOS placed it). A device decoded at several ranges gets one object per range.
/// </summary>
internal interface IPortDevice
{
    uint Read(ushort offset, int sizeBytes);

    void Write(ushort offset, int sizeBytes, uint value);
}

namespace ImgTool.Machine.Pci;

/// <summary>
/// A device's registers behind one BAR, addressed by the offset within the BAR whether the BAR is in
/// I/O or memory space, so a device never sees where the firmware or the OS placed it.
/// </summary>
internal interface IPciBarRegisters
{
    uint Read(uint offsetBytes, int sizeBytes);

    void Write(uint offsetBytes, int sizeBytes, uint value);
}

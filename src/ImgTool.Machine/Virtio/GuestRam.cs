using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Virtio;

/// <summary>
/// A device's DMA view of guest RAM: every access is checked to lie inside RAM first (a buffer
/// outside it is a driver bug that breaks the device, never a host fault), and bulk copies of plain
/// RAM go straight to the RAM array; writes go through the bus so decoded code is invalidated.
/// </summary>
internal sealed class GuestRam(PhysicalMemory memory)
{
    public bool Contains(ulong address, ulong lengthBytes) =>
        address <= memory.RamSizeBytes && lengthBytes <= memory.RamSizeBytes - address;

    public ushort Read16(ulong address) => memory.Read16((uint)address);

    public uint Read32(ulong address) => memory.Read32((uint)address);

    public ulong Read64(ulong address) => memory.Read32((uint)address) | ((ulong)memory.Read32((uint)address + 4) << 32);

    public void Write16(ulong address, ushort value) => memory.Write16((uint)address, value);

    public void Write32(ulong address, uint value) => memory.Write32((uint)address, value);

    public void Write8(ulong address, byte value) => memory.Write8((uint)address, value);

    public void CopyOut(ulong address, Span<byte> destination)
    {
        // Outside the legacy window RAM is plain RAM; inside it PAM may route reads to the ROM.
        ulong end = address + (ulong)destination.Length;
        if (end <= memory.RamSizeBytes && (address >= PhysicalMemory.LegacyWindowEnd || end <= PhysicalMemory.LegacyWindowStart))
        {
            memory.Ram.Slice((int)address, destination.Length).CopyTo(destination);
            return;
        }

        memory.ReadBlock((uint)address, destination);
    }

    public void CopyIn(ulong address, ReadOnlySpan<byte> source) => memory.WriteBlock((uint)address, source);
}

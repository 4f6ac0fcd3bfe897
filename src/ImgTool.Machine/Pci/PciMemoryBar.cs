using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Pci;

/// <summary>
/// A 32-bit memory BAR (bits 2:1 = 00, PCI 3.0 6.2.5.1), non-prefetchable: device registers, never
/// placed over RAM (RAM would answer first on this bus) nor wrapping past 4 GiB.
/// </summary>
internal sealed class PciMemoryBar : PciBar, IMemoryRegion
{
    /// <summary>16 bytes is the spec's floor; Linux and QEMU prefer a 4 KiB page per region.</summary>
    public const uint MinimumSizeBytes = 16;
    private const uint ReservedLowBits = 0xF;
    private readonly PhysicalMemory _memory;
    private readonly IPciBarRegisters _registers;

    public PciMemoryBar(PhysicalMemory memory, uint sizeBytes, IPciBarRegisters registers)
        : base(sizeBytes, MinimumSizeBytes)
    {
        _memory = memory;
        _registers = registers;
    }

    public override uint TypeBits => 0;

    public override ushort DecodeEnableBit => PciFunction.CommandMemorySpace;

    public override uint WritableMask => ~(SizeBytes - 1) & ~ReservedLowBits;

    public uint Read(uint offsetBytes, int sizeBytes) => _registers.Read(offsetBytes, sizeBytes);

    public void Write(uint offsetBytes, int sizeBytes, uint value) => _registers.Write(offsetBytes, sizeBytes, value);

    protected override bool CanMapAt(uint address) =>
        address >= _memory.RamSizeBytes && address <= uint.MaxValue - (SizeBytes - 1) && address + (SizeBytes - 1) != uint.MaxValue;

    protected override void Map(uint address) => _memory.AddRegion(address, SizeBytes, this);

    protected override void Unmap(uint address) => _memory.RemoveRegion(this);
}

using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;

namespace ImgTool.Machine.Pci;

/// <summary>A BAR in I/O space (bit 0 set, PCI 3.0 6.2.5.1): at least 4 ports, below 64 Ki.</summary>
internal sealed class PciIoBar : PciBar, IPortDevice
{
    public const uint MinimumSizeBytes = 4;
    public const uint IoSpaceIndicator = 1;
    private const uint IoSpaceLimit = 0x10000;
    private const uint ReservedLowBits = 3;
    private readonly IoBus _io;
    private readonly IPciBarRegisters _registers;

    public PciIoBar(IoBus io, uint sizeBytes, IPciBarRegisters registers)
        : base(sizeBytes, MinimumSizeBytes)
    {
        _io = io;
        _registers = registers;
    }

    public override uint TypeBits => IoSpaceIndicator;

    public override ushort DecodeEnableBit => PciFunction.CommandIoSpace;

    public override uint WritableMask => ~(SizeBytes - 1) & ~ReservedLowBits;

    // The bus hands over the offset within the BAR (the port convention of IoBus).
    public uint Read(ushort port, int sizeBytes) => _registers.Read(port, sizeBytes);

    public void Write(ushort port, int sizeBytes, uint value) => _registers.Write(port, sizeBytes, value);

    protected override bool CanMapAt(uint address) => address != 0 && address <= IoSpaceLimit - SizeBytes;

    protected override void Map(uint address) => _io.Map((ushort)address, (int)SizeBytes, this);

    protected override void Unmap(uint address) => _io.Unmap((ushort)address, (int)SizeBytes);
}

using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// The PIIX3 advanced power management ports (datasheet 2.2.13/2.2.14): APMC at 0xB2 (a write would
/// raise an SMI when enabled; this machine has no SMM, so it is a plain register) and APMS at 0xB3, a
/// scratch byte for passing status between the OS and SMM code.
/// </summary>
internal sealed class ApmPorts : IPortDevice
{
    public const ushort FirstPort = 0xB2;
    public const int PortCount = 2;
    private readonly byte[] _registers = new byte[PortCount];

    public byte Control => _registers[0];

    public uint Read(ushort offset, int sizeBytes) => _registers[offset];

    public void Write(ushort offset, int sizeBytes, uint value) => _registers[offset] = (byte)value;
}

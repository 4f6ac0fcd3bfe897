using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// The PIIX3 reset control register at 0xCF9 (PIIX3 datasheet 4.7.4 "RC"), a byte port inside the
/// PCI configuration address dword: bit 2 (RCPU) resets on a 0 to 1 transition, bit 1 (SRST) chooses
/// a hard (system) reset over a soft one (CPU INIT). Linux's reboot=pci writes 0x02 then 0x06.
/// </summary>
internal sealed class ResetControlRegister : IPortDevice
{
    public const ushort Port = 0xCF9;
    public const byte SystemReset = 0x02, ResetCpu = 0x04;
    private const byte Implemented = SystemReset | ResetCpu;

    private readonly Action<ResetSource> _reset;
    private byte _value;

    public ResetControlRegister(Action<ResetSource> reset) => _reset = reset;

    /// <summary>Whether the last reset asked for was a hard one (SRST set).</summary>
    public bool LastResetHard { get; private set; }

    public uint Read(ushort offset, int sizeBytes) => _value;

    public void Write(ushort offset, int sizeBytes, uint value)
    {
        byte b = (byte)(value & Implemented);
        bool rising = (b & ResetCpu) != 0 && (_value & ResetCpu) == 0;
        _value = (byte)(b & SystemReset); // RCPU is self-clearing once the reset happened
        if (rising)
        {
            LastResetHard = (b & SystemReset) != 0;
            _reset(ResetSource.ResetControlRegister);
        }
    }
}

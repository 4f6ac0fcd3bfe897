using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// Port 0x92, system control port A (PIIX3 datasheet 4.7.1 "Port 92h"): bit 1 is FAST_A20, bit 0
/// FAST_INIT resets the CPU on a 0 to 1 transition (and reads back as written).
/// </summary>
internal sealed class SystemControlPortA : IPortDevice
{
    public const byte FastReset = 0x01, FastA20 = 0x02;
    private const byte Implemented = FastReset | FastA20;

    private readonly A20Gate _a20;
    private readonly Action<ResetSource> _reset;
    private byte _value;

    public SystemControlPortA(A20Gate a20, Action<ResetSource> reset)
    {
        _a20 = a20;
        _reset = reset;
    }

    public uint Read(ushort offset, int sizeBytes) => (uint)(_value & ~FastA20) | (_a20.FastA20 ? FastA20 : 0u);

    public void Write(ushort offset, int sizeBytes, uint value)
    {
        byte b = (byte)(value & Implemented);
        bool resetRising = (b & FastReset) != 0 && (_value & FastReset) == 0;
        _value = b;
        _a20.FastA20 = (b & FastA20) != 0;
        if (resetRising)
        {
            _reset(ResetSource.SystemControlPortA);
        }
    }
}

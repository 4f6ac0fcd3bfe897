using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// Port 0x61, NMI status and control (PIIX3 datasheet 4.7.2 "NMISC"): bit 0 gates PIT counter 2,
/// bit 1 enables the speaker data, bits 2-3 are NMI source enables (kept, nothing raises an NMI here);
/// read-only bit 4 toggles with every DRAM refresh request (about 15 us), bit 5 is counter 2's OUT,
/// which Linux's pit_calibrate_tsc polls for its terminal count.
/// </summary>
internal sealed class SystemControlPortB : IPortDevice
{
    public const byte Timer2Gate = 0x01, SpeakerData = 0x02, ParityCheckDisable = 0x04, ChannelCheckDisable = 0x08,
        RefreshToggle = 0x10, Timer2Output = 0x20;

    /// <summary>The refresh request period (PIIX3 4.7.2: a refresh cycle every 15 us).</summary>
    public const long RefreshPeriodNs = 15_000;

    private const byte WritableBits = Timer2Gate | SpeakerData | ParityCheckDisable | ChannelCheckDisable;

    private readonly Pit8254 _pit;
    private readonly Func<long> _nowNs;
    private byte _value;

    public SystemControlPortB(Pit8254 pit, Func<long> nowNs)
    {
        _pit = pit;
        _nowNs = nowNs;
    }

    /// <summary>The speaker sounds when counter 2 is gated, its output is enabled and its OUT is high.</summary>
    public bool SpeakerOn => (_value & (Timer2Gate | SpeakerData)) == (Timer2Gate | SpeakerData) && _pit.Output2;

    public uint Read(ushort offset, int sizeBytes)
    {
        uint value = _value;
        if (_pit.Output2)
        {
            value |= Timer2Output;
        }

        if ((_nowNs() / RefreshPeriodNs & 1) != 0)
        {
            value |= RefreshToggle;
        }

        return value;
    }

    public void Write(ushort offset, int sizeBytes, uint value)
    {
        _value = (byte)(value & WritableBits);
        _pit.SetGate2((_value & Timer2Gate) != 0);
    }
}

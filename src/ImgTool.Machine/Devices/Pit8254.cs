using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// The Intel 8254 programmable interval timer of a PC (ports 0x40-0x43), clocked at 1.193182 MHz.
/// Counter 0's OUT drives IRQ0 (an edge per rising OUT), counter 1 is the old DRAM refresh counter,
/// counter 2's gate and OUT are wired to port 0x61 (<see cref="SystemControlPortB"/>), where Linux's
/// TSC calibration (arch/x86/kernel/tsc.c) starts it and polls it. Time is the machine's virtual time,
/// so the same run reads the same counts.
/// </summary>
internal sealed class Pit8254 : IPortDevice, ITimedDevice
{
    public const long FrequencyHz = 1_193_182;
    public const int PortCount = 4;
    public const int Counter0 = 0, Counter2 = 2;

    // Offsets: the three counters, then the control word register (datasheet, table 1).
    private const ushort ControlWordOffset = 3;
    private const int SelectReadBack = 3;

    // Read-back command bits (datasheet, "Read-Back Command"): active-low COUNT and STATUS, counter select.
    private const byte ReadBackNoCount = 0x20, ReadBackNoStatus = 0x10;
    private const int ReadBackCounterShift = 1;
    private const long NsPerSecond = 1_000_000_000;

    private readonly Func<long> _nowNs;
    private readonly Action<bool> _irq0;
    private readonly PitChannel[] _channels = [new(gate: true), new(gate: true), new(gate: false)];

    public Pit8254(Func<long> nowNs, Action<bool> irq0)
    {
        _nowNs = nowNs;
        _irq0 = irq0;
    }

    // 128-bit products: nanoseconds times 1.19 MHz overflow 64 bits after about two hours of virtual time.
    // (The guest polls the counter in delay loops, so this is on a hot path.)
    private long Ticks => (long)((Int128)_nowNs() * FrequencyHz / NsPerSecond);

    /// <summary>The first virtual nanosecond at which <paramref name="tick"/> has been reached.</summary>
    private static long TickToNs(long tick) => (long)(((Int128)tick * NsPerSecond + FrequencyHz - 1) / FrequencyHz);

    /// <summary>The virtual time of counter 0's next OUT rising edge (IRQ0), or long.MaxValue.</summary>
    public long NextDeadlineNs
    {
        get
        {
            long tick = _channels[Counter0].NextEdgeTick(Ticks);
            return tick == long.MaxValue ? tick : TickToNs(tick);
        }
    }

    /// <summary>Raises IRQ0 (an edge: the PIC latches it) when counter 0's OUT has risen since the last call.</summary>
    public void Update()
    {
        if (_channels[Counter0].TakeNewEdges(Ticks))
        {
            _irq0(true);
            _irq0(false);
        }
    }

    /// <summary>Counter 2's gate (port 0x61 bit 0).</summary>
    public void SetGate2(bool level) => _channels[Counter2].SetGate(level, Ticks);

    public bool Gate2 => _channels[Counter2].Gate;

    /// <summary>Counter 2's OUT (port 0x61 bit 5).</summary>
    public bool Output2 => _channels[Counter2].Output(Ticks);

    /// <summary>Counter 0's OUT, for tests and traces.</summary>
    public bool Output0 => _channels[Counter0].Output(Ticks);

    public uint Read(ushort offset, int sizeBytes) =>
        offset < ControlWordOffset ? _channels[offset].Read(Ticks) : 0xFFu; // the control word register is write-only

    public void Write(ushort offset, int sizeBytes, uint value)
    {
        byte b = (byte)value;
        long now = Ticks;
        if (offset < ControlWordOffset)
        {
            Update(); // an edge before the counter is reprogrammed still counts
            _channels[offset].Write(b, now);
            return;
        }

        int select = b >> 6;
        if (select != SelectReadBack)
        {
            Update();
            _channels[select].WriteControl(b, now);
            return;
        }

        for (int n = 0; n < _channels.Length; n++)
        {
            if ((b & (1 << (n + ReadBackCounterShift))) == 0)
            {
                continue;
            }

            // Status first: when both are latched, the first read returns the status byte.
            if ((b & ReadBackNoStatus) == 0)
            {
                _channels[n].LatchStatus(now);
            }

            if ((b & ReadBackNoCount) == 0)
            {
                _channels[n].LatchCount(now);
            }
        }
    }
}

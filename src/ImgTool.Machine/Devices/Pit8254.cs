namespace ImgTool.Machine.Devices;

/// <summary>
/// The 8254 interval timer at 1.193182 MHz (ports 0x40-0x43) and port 0x61 (channel 2 gate and
/// output, speaker). Counting is derived from virtual time, so a run is deterministic. Channel 0
/// drives IRQ0 in modes 2 and 3 (rate generator, square wave) and mode 0 (terminal count).
/// </summary>
internal sealed class Pit8254 : IPortDevice
{
    public const long FrequencyHz = 1_193_182;
    private readonly Func<long> _nowNs;
    private readonly Action<bool> _irq0;
    private readonly Channel[] _channels = [new(), new(), new()];
    private byte _port61;

    public Pit8254(Func<long> nowNs, Action<bool> irq0)
    {
        _nowNs = nowNs;
        _irq0 = irq0;
    }

    // 128-bit products: nanoseconds times 1.19 MHz overflow 64 bits after about two hours of virtual time.
    // (The guest polls the counter in delay loops, so this is on a hot path; decimal arithmetic was slow.)
    private long Ticks => (long)((Int128)_nowNs() * FrequencyHz / 1_000_000_000);

    private static long TicksToNs(long ticks) => (long)((Int128)ticks * 1_000_000_000 / FrequencyHz);

    /// <summary>The virtual time of channel 0's next interrupt, or long.MaxValue.</summary>
    public long NextDeadlineNs
    {
        get
        {
            var c = _channels[0];
            if (!c.Loaded || c.Mode is not (0 or 2 or 3))
            {
                return long.MaxValue;
            }

            long period = c.Period;
            long elapsed = Ticks - c.StartTick;
            long next = c.Mode == 0 ? (elapsed < period ? c.StartTick + period : long.MaxValue) : c.StartTick + ((elapsed / period) + 1) * period;
            return next == long.MaxValue ? next : TicksToNs(next) + 1;
        }
    }

    /// <summary>Raises IRQ0 (as an edge) when channel 0 has passed a period boundary since the last call.</summary>
    public void Update()
    {
        var c = _channels[0];
        if (!c.Loaded)
        {
            return;
        }

        long now = Ticks;
        long periods = (now - c.StartTick) / c.Period;
        if (c.Mode == 0)
        {
            if (periods >= 1 && !c.Fired)
            {
                c.Fired = true;
                _irq0(true);
                _irq0(false);
            }

            return;
        }

        if (periods > c.PeriodsSignalled)
        {
            c.PeriodsSignalled = periods;
            _irq0(true);
            _irq0(false);
        }
    }

    public uint Read(ushort port, int sizeBytes)
    {
        if (port == 0x61)
        {
            // Bit 5: channel 2 output; bit 4: refresh toggle (flips every 15 us).
            long now = Ticks;
            uint value = _port61 & 0x0Fu;
            if (Output(_channels[2], now))
            {
                value |= 0x20;
            }

            if ((_nowNs() / 15_000 & 1) != 0)
            {
                value |= 0x10;
            }

            return value;
        }

        if (port == 0x43)
        {
            return 0xFF;
        }

        var c = _channels[port - 0x40];
        if (c.StatusLatched)
        {
            c.StatusLatched = false;
            return c.Status;
        }

        if (!c.LatchValid)
        {
            c.Latch = Count(c, Ticks);
        }

        byte result;
        switch (c.Access)
        {
            case 1: result = (byte)c.Latch; c.LatchValid = false; break;
            case 2: result = (byte)(c.Latch >> 8); c.LatchValid = false; break;
            default:
                if (!c.ReadHigh)
                {
                    result = (byte)c.Latch;
                    c.ReadHigh = true;
                    c.LatchValid = true;
                }
                else
                {
                    result = (byte)(c.Latch >> 8);
                    c.ReadHigh = false;
                    c.LatchValid = false;
                }

                break;
        }

        return result;
    }

    public void Write(ushort port, int sizeBytes, uint value)
    {
        byte b = (byte)value;
        if (port == 0x61)
        {
            var c2 = _channels[2];
            bool gate = (b & 1) != 0;
            if (gate && (_port61 & 1) == 0)
            {
                c2.StartTick = Ticks; // rising gate restarts channel 2
            }

            _port61 = b;
            return;
        }

        if (port == 0x43)
        {
            int select = b >> 6;
            if (select == 3)
            {
                // Read-back: latch count and/or status of the selected channels.
                for (int n = 0; n < 3; n++)
                {
                    if ((b & (2 << n)) != 0)
                    {
                        var rc = _channels[n];
                        if ((b & 0x20) == 0)
                        {
                            rc.Latch = Count(rc, Ticks);
                            rc.LatchValid = true;
                        }

                        if ((b & 0x10) == 0)
                        {
                            rc.Status = (byte)((Output(rc, Ticks) ? 0x80 : 0) | (rc.Access << 4) | (rc.Mode << 1));
                            rc.StatusLatched = true;
                        }
                    }
                }

                return;
            }

            var c = _channels[select];
            int access = (b >> 4) & 3;
            if (access == 0)
            {
                c.Latch = Count(c, Ticks);
                c.LatchValid = true;
                c.ReadHigh = false;
                return;
            }

            c.Access = access;
            c.Mode = (b >> 1) & 7;
            if (c.Mode > 5)
            {
                c.Mode -= 4;
            }

            c.WriteHigh = false;
            c.ReadHigh = false;
            c.LatchValid = false;
            return;
        }

        var ch = _channels[port - 0x40];
        switch (ch.Access)
        {
            case 1: ch.Reload = (ch.Reload & 0xFF00) | b; Load(ch); break;
            case 2: ch.Reload = (ch.Reload & 0xFF) | (b << 8); Load(ch); break;
            default:
                if (!ch.WriteHigh)
                {
                    ch.Reload = (ch.Reload & 0xFF00) | b;
                    ch.WriteHigh = true;
                }
                else
                {
                    ch.Reload = (ch.Reload & 0xFF) | (b << 8);
                    ch.WriteHigh = false;
                    Load(ch);
                }

                break;
        }
    }

    private void Load(Channel c)
    {
        c.Loaded = true;
        c.StartTick = Ticks;
        c.PeriodsSignalled = 0;
        c.Fired = false;
    }

    private static int Count(Channel c, long now)
    {
        if (!c.Loaded)
        {
            return 0;
        }

        long elapsed = now - c.StartTick;
        if (c.Mode == 0 || c.Mode == 1)
        {
            return (int)((c.Period - elapsed) & 0xFFFF);
        }

        return (int)(c.Period - (elapsed % c.Period));
    }

    private bool Output(Channel c, long now)
    {
        if (!c.Loaded)
        {
            return false;
        }

        long elapsed = now - c.StartTick;
        return c.Mode switch
        {
            0 or 1 => elapsed >= c.Period,
            3 => elapsed % c.Period < (c.Period + 1) / 2,
            _ => elapsed % c.Period != c.Period - 1,
        };
    }

    private sealed class Channel
    {
        public int Reload;
        public int Access = 3;
        public int Mode;
        public bool Loaded;
        public long StartTick;
        public long PeriodsSignalled;
        public bool Fired;
        public int Latch;
        public bool LatchValid;
        public bool ReadHigh;
        public bool WriteHigh;
        public byte Status;
        public bool StatusLatched;

        public long Period => Reload == 0 ? 65536 : Reload;
    }
}

namespace ImgTool.Machine.Devices;

/// <summary>How a counter is read and written (8254 datasheet, control word bits RW1-RW0).</summary>
internal enum PitAccess
{
    /// <summary>RW = 00 in a control word is the counter latch command, never a mode.</summary>
    LatchCommand = 0,
    LowByte = 1,
    HighByte = 2,
    LowThenHigh = 3,
}

/// <summary>
/// One counter of the Intel 8254 (datasheet 23124406, "Modes" and "Read Operations"), computed from
/// the input clock's tick count rather than stepped: elapsed ticks since the count was loaded (or the
/// gate triggered) give the count, OUT and the number of OUT rising edges, so any read at any virtual
/// time is exact and costs the same. A new count written in mode 2 or 3 while counting takes effect
/// at the end of the current period (the datasheet has mode 3 switch at the end of the half-cycle;
/// the period end is close enough for a count Linux and the BIOS always precede with a control word).
/// </summary>
internal sealed class PitChannel
{
    private const int BinaryModulus = 1 << 16, BcdModulus = 10_000;
    private const int MaxMode = 5;

    // Read-back status byte (datasheet, "Status Byte").
    private const byte StatusOutput = 0x80, StatusNullCount = 0x40;
    private const int StatusAccessShift = 4, StatusModeShift = 1;

    private int _reload;
    private bool _countWritten;
    private bool _writeLowDone;
    private bool _readLowDone;
    private bool _gate;
    private bool _triggered;
    private bool _nullCount;
    private long _loadTick;

    // Counting: ticks counted before _anchorTick, and whether the counter runs from there.
    private long _anchorTick;
    private long _elapsedAtAnchor;
    private bool _running;
    private long _period = BinaryModulus;
    private long _edgesSignalled;

    // Modes 2 and 3: a count written while counting waits for the end of the current period.
    private long _pendingPeriod;
    private long _pendingAtElapsed = -1;

    private int? _latchedCount;
    private bool _latchedLowDone;
    private byte? _latchedStatus;

    public PitChannel(bool gate) => _gate = gate;

    public int Mode { get; private set; }

    public PitAccess Access { get; private set; } = PitAccess.LowThenHigh;

    public bool Bcd { get; private set; }

    public bool Gate => _gate;

    /// <summary>The control word for this counter (SC bits already decoded by the caller).</summary>
    public void WriteControl(byte controlWord, long now)
    {
        var access = (PitAccess)((controlWord >> 4) & 3);
        if (access == PitAccess.LatchCommand)
        {
            LatchCount(now);
            return;
        }

        Access = access;
        int mode = (controlWord >> 1) & 7;
        Mode = mode > MaxMode ? mode - 4 : mode; // modes 6 and 7 are 2 and 3 (datasheet, control word format)
        Bcd = (controlWord & 1) != 0;

        // "When a Control Word is written to a Counter, all Control Logic is immediately reset and OUT
        // goes to a known initial state": low in mode 0, high in the others; a new count must follow.
        _countWritten = false;
        _running = false;
        _triggered = false;
        _elapsedAtAnchor = 0;
        _pendingAtElapsed = -1;
        _nullCount = true;
        _writeLowDone = false;
        _readLowDone = false;
        _latchedCount = null;
        _latchedStatus = null;
    }

    /// <summary>Counter latch command, or the COUNT part of read-back: the first latch holds until it is read.</summary>
    public void LatchCount(long now)
    {
        ApplyPendingReload(now);
        if (_latchedCount is null)
        {
            _latchedCount = Count(now);
            _latchedLowDone = false;
        }
    }

    /// <summary>The STATUS part of read-back: OUT, null count and the programmed mode, held until read.</summary>
    public void LatchStatus(long now)
    {
        ApplyPendingReload(now);
        _latchedStatus ??= (byte)((Output(now) ? StatusOutput : 0) | (NullCount(now) ? StatusNullCount : 0) |
            ((int)Access << StatusAccessShift) | (Mode << StatusModeShift) | (Bcd ? 1 : 0));
    }

    public byte Read(long now)
    {
        ApplyPendingReload(now);
        if (_latchedStatus is { } status)
        {
            _latchedStatus = null;
            return status;
        }

        if (_latchedCount is { } latched)
        {
            bool high = Access == PitAccess.HighByte || (Access == PitAccess.LowThenHigh && _latchedLowDone);
            if (Access == PitAccess.LowThenHigh && !_latchedLowDone)
            {
                _latchedLowDone = true;
            }
            else
            {
                _latchedCount = null;
            }

            return (byte)(high ? latched >> 8 : latched);
        }

        // Unlatched reads see the counting element live, byte by byte (Linux's quick_pit_calibrate
        // reads LSB then MSB this way and looks only at the MSB).
        int count = Count(now);
        bool readHigh = Access == PitAccess.HighByte || (Access == PitAccess.LowThenHigh && _readLowDone);
        if (Access == PitAccess.LowThenHigh)
        {
            _readLowDone = !_readLowDone;
        }

        return (byte)(readHigh ? count >> 8 : count);
    }

    public void Write(byte value, long now)
    {
        ApplyPendingReload(now);
        switch (Access)
        {
            case PitAccess.LowByte:
                _reload = value; // the other byte is zero (datasheet, "Write Operations")
                Load(now);
                break;
            case PitAccess.HighByte:
                _reload = value << 8;
                Load(now);
                break;
            default:
                if (!_writeLowDone)
                {
                    _reload = (_reload & 0xFF00) | value;
                    _writeLowDone = true;
                    if (Mode == 0)
                    {
                        // Mode 0: "writing the first byte disables counting; OUT is set low immediately".
                        Freeze(now);
                        _running = false;
                        _countWritten = false;
                    }
                }
                else
                {
                    _reload = (_reload & 0x00FF) | (value << 8);
                    _writeLowDone = false;
                    Load(now);
                }

                break;
        }
    }

    /// <summary>The GATE input (tied high for counters 0 and 1 on a PC; port 0x61 bit 0 for counter 2).</summary>
    public void SetGate(bool level, long now)
    {
        ApplyPendingReload(now);
        bool rising = level && !_gate;
        Freeze(now);
        _gate = level;
        if (!_countWritten)
        {
            return;
        }

        switch (Mode)
        {
            case 1 or 5:
                // Hardware-triggered modes: a rising edge (re)loads the count and starts it.
                if (rising)
                {
                    Restart(now);
                    _triggered = true;
                }

                break;
            case 2 or 3:
                // Gate low stops counting (OUT high); a rising edge reloads the initial count.
                if (rising)
                {
                    Restart(now);
                }

                _running = level;
                break;
            default:
                _running = level; // modes 0 and 4: the gate only suspends counting
                break;
        }
    }

    /// <summary>OUT at tick <paramref name="now"/> (datasheet, "Mode 0" to "Mode 5" waveforms).</summary>
    public bool Output(long now)
    {
        ApplyPendingReload(now);
        if (!_countWritten)
        {
            return Mode != 0;
        }

        long elapsed = Elapsed(now);
        return Mode switch
        {
            0 => elapsed >= _period,
            1 => !_triggered || elapsed >= _period,
            2 => !_gate || elapsed % _period != _period - 1,
            3 => !_gate || elapsed % _period < (_period + 1) / 2,
            4 => elapsed != _period,
            _ => !_triggered || elapsed != _period,
        };
    }

    /// <summary>OUT rising edges since the count was loaded that <see cref="TakeNewEdges"/> has not reported.</summary>
    public bool TakeNewEdges(long now)
    {
        ApplyPendingReload(now);
        long edges = Edges(Elapsed(now));
        if (edges <= _edgesSignalled)
        {
            return false;
        }

        _edgesSignalled = edges;
        return true;
    }

    /// <summary>The tick of the next OUT rising edge, or long.MaxValue when none will come without the guest acting.</summary>
    public long NextEdgeTick(long now)
    {
        ApplyPendingReload(now);
        if (!_running)
        {
            return long.MaxValue;
        }

        long elapsed = Elapsed(now);
        long target = Mode switch
        {
            0 or 1 => elapsed < _period ? _period : -1,
            2 or 3 => ((elapsed / _period) + 1) * _period,
            _ => elapsed <= _period ? _period + 1 : -1,
        };

        return target < 0 ? long.MaxValue : _anchorTick + (target - _elapsedAtAnchor);
    }

    private long Edges(long elapsed)
    {
        if (!_countWritten || ((Mode is 1 or 5) && !_triggered))
        {
            return 0;
        }

        return Mode switch
        {
            0 or 1 => elapsed >= _period ? 1 : 0,
            2 or 3 => elapsed / _period,
            _ => elapsed > _period ? 1 : 0,
        };
    }

    /// <summary>The counting element's value (binary, or four BCD digits in BCD mode).</summary>
    private int Count(long now)
    {
        if (!_countWritten || ((Mode is 1 or 5) && !_triggered))
        {
            return _reload;
        }

        long elapsed = Elapsed(now);
        long modulus = Bcd ? BcdModulus : BinaryModulus;
        long value = Mode switch
        {
            2 => _period - (elapsed % _period),
            3 => _period - ((2 * elapsed) % _period), // mode 3 counts down by two, twice per period
            _ => ((_period - elapsed) % modulus + modulus) % modulus,
        };

        value %= modulus; // a full-period count (65536 or 10000) reads as 0
        return Bcd ? ToBcd((int)value) : (int)value;
    }

    private bool NullCount(long now)
    {
        // The count moves from the count register to the counting element on the next CLK pulse (or the
        // gate trigger in modes 1 and 5); until then status bit 6 reads 1.
        if (_nullCount && _countWritten && now > _loadTick && !((Mode is 1 or 5) && !_triggered))
        {
            _nullCount = false;
        }

        return _nullCount;
    }

    private void Load(long now)
    {
        if (Mode is 2 or 3 && _countWritten && _running)
        {
            // Counting goes on with the old count until the period ends (datasheet, modes 2 and 3).
            _nullCount = true;
            _loadTick = now;
            _pendingPeriod = PeriodOf(_reload);
            _pendingAtElapsed = ((Elapsed(now) / _period) + 1) * _period;
            return;
        }

        _countWritten = true;
        _nullCount = true;
        _loadTick = now;
        if (Mode is 1 or 5)
        {
            return; // loaded into the counting element at the next gate trigger
        }

        Restart(now);
        _running = _gate;
    }

    /// <summary>Switches to a deferred count once counting has reached the end of the period it was written in.</summary>
    private void ApplyPendingReload(long now)
    {
        if (_pendingAtElapsed < 0 || !_running || Elapsed(now) < _pendingAtElapsed)
        {
            return;
        }

        long switchTick = _anchorTick + (_pendingAtElapsed - _elapsedAtAnchor);
        _edgesSignalled -= Edges(_pendingAtElapsed); // edges of the old count stay reported, the new count's are new
        _period = _pendingPeriod;
        _anchorTick = switchTick;
        _elapsedAtAnchor = 0;
        _pendingAtElapsed = -1;
    }

    private void Restart(long now)
    {
        _pendingAtElapsed = -1;
        _period = PeriodOf(_reload);
        _anchorTick = now;
        _elapsedAtAnchor = 0;
        _edgesSignalled = 0;
        _running = true;
    }

    private void Freeze(long now)
    {
        _elapsedAtAnchor = Elapsed(now);
        _anchorTick = now;
    }

    private long Elapsed(long now) => _running ? _elapsedAtAnchor + (now - _anchorTick) : _elapsedAtAnchor;

    /// <summary>A count of 0 is the maximum: 2^16 in binary, 10^4 in BCD (datasheet, "Counter Operation").</summary>
    private long PeriodOf(int reload)
    {
        if (!Bcd)
        {
            return reload == 0 ? BinaryModulus : reload;
        }

        int value = FromBcd(reload);
        return value == 0 ? BcdModulus : value;
    }

    private static int FromBcd(int bcd) =>
        (bcd & 0xF) + (((bcd >> 4) & 0xF) * 10) + (((bcd >> 8) & 0xF) * 100) + (((bcd >> 12) & 0xF) * 1000);

    private static int ToBcd(int value) =>
        (value % 10) | ((value / 10 % 10) << 4) | ((value / 100 % 10) << 8) | ((value / 1000 % 10) << 12);
}

using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// The Motorola MC146818 real-time clock and its CMOS RAM (index port 0x70 with the NMI mask in bit 7,
/// data port 0x71). The clock starts at <see cref="Epoch"/> and advances with virtual time through
/// the 32.768 kHz divider chain: an update each second, with UIP in register A set for the 244 us
/// before it (MC146818A datasheet, "Update Cycle"; Linux's mc146818_avoid_UIP waits for it to clear).
/// Register B selects BCD or binary and 12- or 24-hour format and holds updates with SET; register C
/// reports the periodic, alarm and update-ended interrupts (IRQ 8) and clears on read. The RAM bytes
/// SeaBIOS reads (memory sizes, equipment, boot order) are set from the machine's configuration.
/// </summary>
internal sealed class CmosRtc : IPortDevice, ITimedDevice
{
    public const int PortCount = 2;
    public const ushort IndexOffset = 0, DataOffset = 1;
    public static readonly DateTime Epoch = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    // Register indexes (datasheet, "Address Map"); 0x32 is the century byte (IBM PC/AT, ACPI FADT).
    public const int Seconds = 0x00, SecondsAlarm = 0x01, Minutes = 0x02, MinutesAlarm = 0x03, Hours = 0x04,
        HoursAlarm = 0x05, DayOfWeek = 0x06, DayOfMonth = 0x07, Month = 0x08, Year = 0x09,
        RegisterA = 0x0A, RegisterB = 0x0B, RegisterC = 0x0C, RegisterD = 0x0D, Century = 0x32;

    // Register A: UIP, the divider (DV2-0) and the periodic rate (RS3-0).
    public const byte AUpdateInProgress = 0x80;
    public const byte DividerNormal = 0x20;
    private const byte DividerMask = 0x70, DividerResetMask = 0x60, RateMask = 0x0F;

    // Register B.
    public const byte BSet = 0x80, BPeriodicEnable = 0x40, BAlarmEnable = 0x20, BUpdateEnable = 0x10,
        BBinary = 0x04, B24Hour = 0x02;

    // Register C and D.
    public const byte CIrq = 0x80, CPeriodic = 0x40, CAlarm = 0x20, CUpdate = 0x10;
    public const byte DValidRam = 0x80;

    private const byte NmiDisable = 0x80, IndexMask = 0x7F, HourPm = 0x80, AlarmDontCare = 0xC0;
    private const int RamBytes = 128, HoursPerHalfDay = 12, YearsPerCentury = 100;

    public const long UpdateInProgressNs = 244_000;
    private const long NsPerSecond = 1_000_000_000;

    /// <summary>After the divider leaves reset, the first update comes half a second later (datasheet, "Divider Control").</summary>
    private const long FirstUpdateAfterResetNs = NsPerSecond / 2;

    /// <summary>The periodic rate is 65536 Hz >> RS for RS 3-15; RS 1 and 2 repeat RS 8 and 9 (datasheet table 3).</summary>
    private const long PeriodicBaseHz = 65536;
    private const int LowRateAlias = 7;

    private readonly byte[] _ram = new byte[RamBytes];
    private readonly Func<long> _nowNs;
    private readonly Action<bool> _irq8;
    private int _index;

    // The clock: _baseTime was current when _baseUpdates update boundaries had passed since _phaseNs.
    private long _phaseNs;
    private DateTime _baseTime = Epoch;
    private long _baseUpdates;
    private int[]? _pendingFields;
    private long _flagsCheckedNs;
    private bool _irqLevel;

    public CmosRtc(Func<long> nowNs, uint ramSizeBytes, Action<bool>? irq8 = null)
    {
        _nowNs = nowNs;
        _irq8 = irq8 ?? (_ => { });
        _ram[RegisterA] = DividerNormal | 0x06; // 32.768 kHz time base, 1024 Hz periodic rate
        _ram[RegisterB] = B24Hour;              // 24-hour, BCD
        _ram[RegisterD] = DValidRam;
        CmosLayout.FillFirmwareBytes(_ram, ramSizeBytes);
    }

    /// <summary>Port 0x70 bit 7: NMIs masked (nothing raises an NMI here; kept as state).</summary>
    public bool NmiMasked { get; private set; }

    private bool DividerRunning => (_ram[RegisterA] & DividerMask) == DividerNormal;

    private bool Updating => DividerRunning && (_ram[RegisterB] & BSet) == 0;

    private bool Binary => (_ram[RegisterB] & BBinary) != 0;

    private bool TwentyFourHour => (_ram[RegisterB] & B24Hour) != 0;

    /// <summary>The clock's time now (for tests and traces).</summary>
    public DateTime Now => CurrentTime(_nowNs());

    public long NextDeadlineNs
    {
        get
        {
            if (_irqLevel || !DividerRunning)
            {
                return long.MaxValue; // IRQ 8 is asserted until register C is read; nothing new until then
            }

            long now = _nowNs();
            long next = long.MaxValue;
            if ((_ram[RegisterB] & BPeriodicEnable) != 0 && PeriodNs() is { } period)
            {
                next = BoundaryAfter(now, period);
            }

            if ((_ram[RegisterB] & (BUpdateEnable | BAlarmEnable)) != 0 && Updating)
            {
                next = Math.Min(next, _phaseNs + ((UpdatesAt(now) + 1) * NsPerSecond));
            }

            return next;
        }
    }

    public void Update() => RefreshFlags(_nowNs());

    public uint Read(ushort offset, int sizeBytes)
    {
        if (offset == IndexOffset)
        {
            return 0xFF; // the index register is write-only
        }

        long now = _nowNs();
        switch (_index)
        {
            case Seconds or Minutes or Hours or DayOfWeek or DayOfMonth or Month or Year or Century:
                // Under SET the registers hold what the guest wrote; the clock resumes from them.
                return TimeRegister(_index, _pendingFields is { } fields ? FromFields(fields) : CurrentTime(now));
            case RegisterA:
                return (uint)(_ram[RegisterA] | (UpdateInProgress(now) ? AUpdateInProgress : 0));
            case RegisterC:
            {
                RefreshFlags(now);
                uint value = _ram[RegisterC];
                _ram[RegisterC] = 0;
                SetIrq(false);
                return value;
            }

            default:
                return _ram[_index];
        }
    }

    public void Write(ushort offset, int sizeBytes, uint value)
    {
        byte b = (byte)value;
        if (offset == IndexOffset)
        {
            _index = b & IndexMask;
            NmiMasked = (b & NmiDisable) != 0;
            return;
        }

        long now = _nowNs();
        switch (_index)
        {
            case Seconds or Minutes or Hours or DayOfMonth or Month or Year or Century:
                WriteTimeRegister(_index, b, now);
                break;
            case DayOfWeek:
                break; // derived from the date
            case RegisterA:
                WriteRegisterA(b, now);
                break;
            case RegisterB:
                WriteRegisterB(b, now);
                break;
            case RegisterC or RegisterD:
                break; // read-only
            default:
                _ram[_index] = b;
                break;
        }
    }

    private bool UpdateInProgress(long now)
    {
        if (!Updating)
        {
            return false;
        }

        long intoSecond = (now - _phaseNs) % NsPerSecond;
        return intoSecond >= NsPerSecond - UpdateInProgressNs;
    }

    private long UpdatesAt(long now) => Math.Max(0, (now - _phaseNs) / NsPerSecond);

    private DateTime CurrentTime(long now) =>
        Updating ? _baseTime.AddSeconds(UpdatesAt(now) - _baseUpdates) : _baseTime;

    private void Materialize(long now)
    {
        _baseTime = CurrentTime(now);
        _baseUpdates = UpdatesAt(now);
    }

    private void WriteRegisterA(byte value, long now)
    {
        RefreshFlags(now);
        Materialize(now);
        bool wasReset = (_ram[RegisterA] & DividerResetMask) == DividerResetMask;
        _ram[RegisterA] = (byte)(value & ~AUpdateInProgress);
        if (wasReset && DividerRunning)
        {
            _phaseNs = now - (NsPerSecond - FirstUpdateAfterResetNs);
            _baseUpdates = UpdatesAt(now);
        }
    }

    private void WriteRegisterB(byte value, long now)
    {
        RefreshFlags(now);
        Materialize(now);
        bool wasSet = (_ram[RegisterB] & BSet) != 0;
        if ((value & BSet) != 0)
        {
            value &= unchecked((byte)~BUpdateEnable); // SET clears UIE (datasheet, register B)
            if (!wasSet)
            {
                _pendingFields = Fields(_baseTime);
            }
        }
        else if (wasSet && _pendingFields is { } fields)
        {
            // Leaving SET: the clock resumes from what the guest wrote, at the next update boundary.
            _baseTime = FromFields(fields);
            _pendingFields = null;
        }

        _ram[RegisterB] = value;
        _baseUpdates = UpdatesAt(now);
    }

    private void WriteTimeRegister(int index, byte value, long now)
    {
        Materialize(now);
        int[] fields = _pendingFields ?? Fields(_baseTime);
        switch (index)
        {
            case Seconds: fields[0] = Decode(value); break;
            case Minutes: fields[1] = Decode(value); break;
            case Hours: fields[2] = DecodeHour(value); break;
            case DayOfMonth: fields[3] = Decode(value); break;
            case Month: fields[4] = Decode(value); break;
            case Year: fields[5] = (fields[5] / YearsPerCentury * YearsPerCentury) + Decode(value); break;
            default: fields[5] = (Decode(value) * YearsPerCentury) + (fields[5] % YearsPerCentury); break;
        }

        if (_pendingFields is null)
        {
            _baseTime = FromFields(fields);
        }
    }

    private static int[] Fields(DateTime time) => [time.Second, time.Minute, time.Hour, time.Day, time.Month, time.Year];

    /// <summary>A date from register values, each clamped into range (a guest may write nonsense).</summary>
    private static DateTime FromFields(int[] fields)
    {
        int year = Math.Clamp(fields[5], 1, 9999);
        int month = Math.Clamp(fields[4], 1, 12);
        int day = Math.Clamp(fields[3], 1, DateTime.DaysInMonth(year, month));
        return new DateTime(year, month, day, Math.Clamp(fields[2], 0, 23), Math.Clamp(fields[1], 0, 59), Math.Clamp(fields[0], 0, 59), DateTimeKind.Utc);
    }

    private uint TimeRegister(int index, DateTime time) => index switch
    {
        Seconds => Encode(time.Second),
        Minutes => Encode(time.Minute),
        Hours => EncodeHour(time.Hour),
        DayOfWeek => Encode((int)time.DayOfWeek + 1), // 1 = Sunday
        DayOfMonth => Encode(time.Day),
        Month => Encode(time.Month),
        Year => Encode(time.Year % YearsPerCentury),
        _ => Encode(time.Year / YearsPerCentury),
    };

    private uint Encode(int value) => Binary ? (uint)value : (uint)(((value / 10) << 4) | (value % 10));

    private int Decode(byte value) => Binary ? value : ((value >> 4) * 10) + (value & 0xF);

    /// <summary>12-hour format: 1-12 with bit 7 for PM (datasheet, "Time, Calendar and Alarm Data Modes").</summary>
    private uint EncodeHour(int hour)
    {
        if (TwentyFourHour)
        {
            return Encode(hour);
        }

        int twelve = hour % HoursPerHalfDay == 0 ? HoursPerHalfDay : hour % HoursPerHalfDay;
        return Encode(twelve) | (hour >= HoursPerHalfDay ? HourPm : 0u);
    }

    private int DecodeHour(byte value)
    {
        if (TwentyFourHour)
        {
            return Decode(value);
        }

        int twelve = Decode((byte)(value & ~HourPm)) % HoursPerHalfDay;
        return twelve + ((value & HourPm) != 0 ? HoursPerHalfDay : 0);
    }

    private long? PeriodNs()
    {
        int rate = _ram[RegisterA] & RateMask;
        if (rate == 0)
        {
            return null;
        }

        int shift = rate <= 2 ? rate + LowRateAlias : rate;
        return (long)((Int128)NsPerSecond * (1L << shift) / PeriodicBaseHz);
    }

    private long BoundaryAfter(long now, long period) => _phaseNs + (((now - _phaseNs) / period) + 1) * period;

    /// <summary>Sets register C's flags for the periodic, update and alarm events since the last check; raises IRQ 8.</summary>
    private void RefreshFlags(long now)
    {
        long since = _flagsCheckedNs;
        _flagsCheckedNs = now;
        if (now <= since || !DividerRunning)
        {
            return;
        }

        byte flags = 0;
        if (PeriodNs() is { } period && (now - _phaseNs) / period > (since - _phaseNs) / period)
        {
            flags |= CPeriodic;
        }

        if (Updating && UpdatesAt(now) > UpdatesAt(since))
        {
            flags |= CUpdate;
            if (AlarmMatches(CurrentTime(now)))
            {
                flags |= CAlarm; // checked at the latest update only
            }
        }

        _ram[RegisterC] |= flags;
        byte enabled = (byte)(_ram[RegisterB] & (BPeriodicEnable | BAlarmEnable | BUpdateEnable));
        if ((_ram[RegisterC] & enabled) != 0)
        {
            _ram[RegisterC] |= CIrq;
            SetIrq(true);
        }
    }

    private bool AlarmMatches(DateTime time) =>
        AlarmField(_ram[SecondsAlarm], Encode(time.Second)) && AlarmField(_ram[MinutesAlarm], Encode(time.Minute)) &&
        AlarmField(_ram[HoursAlarm], EncodeHour(time.Hour));

    private static bool AlarmField(byte alarm, uint value) => (alarm & AlarmDontCare) == AlarmDontCare || alarm == value;

    private void SetIrq(bool level)
    {
        if (level != _irqLevel)
        {
            _irqLevel = level;
            _irq8(level);
        }
    }
}

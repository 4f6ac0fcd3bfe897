using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;

namespace ImgTool.Machine.Tests.Devices;

/// <summary>The MC146818 at 0x70/0x71 through the bus in virtual time, read the way Linux's mc146818_get_time reads it.</summary>
public sealed class CmosRtcTests
{
    private const ushort Index = 0x70, Data = 0x71;
    private const long Second = 1_000_000_000;

    private readonly VirtualClock _clock = new();
    private readonly IoBus _bus = new();
    private readonly CmosRtc _rtc;
    private bool _irq8;

    public CmosRtcTests()
    {
        _rtc = new CmosRtc(() => _clock.NowNs, 256u << 20, level => _irq8 = level);
        _bus.Map(Index, CmosRtc.PortCount, _rtc);
    }

    private byte Read(int register)
    {
        _bus.Out(Index, 1, (uint)register);
        return (byte)_bus.In(Data, 1);
    }

    private void Write(int register, byte value)
    {
        _bus.Out(Index, 1, (uint)register);
        _bus.Out(Data, 1, value);
    }

    [Fact]
    public void Uip_is_set_for_the_244_us_before_each_update_and_the_seconds_change_at_the_update()
    {
        _clock.NowNs = Second - CmosRtc.UpdateInProgressNs - 1;
        Assert.Equal(0, Read(CmosRtc.RegisterA) & CmosRtc.AUpdateInProgress);
        Assert.Equal(0x00, Read(CmosRtc.Seconds));
        _clock.Advance(2);
        Assert.NotEqual(0, Read(CmosRtc.RegisterA) & CmosRtc.AUpdateInProgress);
        Assert.Equal(0x00, Read(CmosRtc.Seconds)); // not updated yet
        _clock.NowNs = Second;
        Assert.Equal(0, Read(CmosRtc.RegisterA) & CmosRtc.AUpdateInProgress);
        Assert.Equal(0x01, Read(CmosRtc.Seconds));
    }

    [Fact]
    public void Linux_get_time_waits_out_uip_and_reads_the_deterministic_clock_in_bcd()
    {
        _clock.NowNs = (3661 * Second) + Second - 100_000; // inside the UIP window before 01:01:02
        int waits = 0;
        while ((Read(CmosRtc.RegisterA) & CmosRtc.AUpdateInProgress) != 0)
        {
            _clock.Advance(1_000_000); // mc146818_avoid_UIP: mdelay(1) and retry
            waits++;
        }

        Assert.Equal(1, waits);
        Assert.Equal(0x02, Read(CmosRtc.Seconds));
        Assert.Equal(0x01, Read(CmosRtc.Minutes));
        Assert.Equal(0x01, Read(CmosRtc.Hours));
        Assert.Equal(0x01, Read(CmosRtc.DayOfMonth));
        Assert.Equal(0x01, Read(CmosRtc.Month));
        Assert.Equal(0x26, Read(CmosRtc.Year));
        Assert.Equal(0x20, Read(CmosRtc.Century));
        Assert.Equal(0x05, Read(CmosRtc.DayOfWeek)); // 2026-01-01 is a Thursday: 5 with Sunday = 1
    }

    [Fact]
    public void Register_b_selects_binary_and_12_hour_format()
    {
        _clock.NowNs = ((13 * 3600) + (5 * 60) + 9) * Second; // 13:05:09
        Write(CmosRtc.RegisterB, CmosRtc.BBinary); // binary, 12-hour
        Assert.Equal(9, Read(CmosRtc.Seconds));
        Assert.Equal(0x80 | 1, Read(CmosRtc.Hours)); // 1 PM
        Write(CmosRtc.RegisterB, 0); // BCD, 12-hour
        Assert.Equal(0x09, Read(CmosRtc.Seconds));
        Assert.Equal(0x80 | 0x01, Read(CmosRtc.Hours));
        _clock.NowNs = 30 * 60 * Second; // 00:30
        Assert.Equal(0x12, Read(CmosRtc.Hours)); // 12 AM
        Write(CmosRtc.RegisterB, CmosRtc.B24Hour | CmosRtc.BBinary);
        Assert.Equal(0, Read(CmosRtc.Hours));
    }

    [Fact]
    public void Setting_the_time_under_set_holds_updates_and_resumes_from_the_written_values()
    {
        // mc146818_set_time: SET on, divider reset, write the fields, SET off, divider back.
        byte control = Read(CmosRtc.RegisterB);
        Write(CmosRtc.RegisterB, (byte)(control | CmosRtc.BSet));
        byte freq = Read(CmosRtc.RegisterA);
        Write(CmosRtc.RegisterA, (byte)(freq | 0x70));
        Write(CmosRtc.Seconds, 0x58);
        Write(CmosRtc.Minutes, 0x59);
        Write(CmosRtc.Hours, 0x23);
        Write(CmosRtc.DayOfMonth, 0x31);
        Write(CmosRtc.Month, 0x12);
        Write(CmosRtc.Year, 0x30);
        _clock.Advance(5 * Second);
        Assert.Equal(0x58, Read(CmosRtc.Seconds)); // held
        Write(CmosRtc.RegisterB, control);
        Write(CmosRtc.RegisterA, freq);

        Assert.Equal(new DateTime(2030, 12, 31, 23, 59, 58, DateTimeKind.Utc), _rtc.Now);
        _clock.Advance(Second / 2); // the first update comes 500 ms after the divider leaves reset
        Assert.Equal(new DateTime(2030, 12, 31, 23, 59, 59, DateTimeKind.Utc), _rtc.Now);
        _clock.Advance(Second);
        Assert.Equal(0x00, Read(CmosRtc.Seconds));
        Assert.Equal(0x01, Read(CmosRtc.Month));
        Assert.Equal(0x31, Read(CmosRtc.Year));
    }

    [Fact]
    public void Periodic_interrupt_raises_irq8_at_the_programmed_rate_until_register_c_is_read()
    {
        Write(CmosRtc.RegisterA, CmosRtc.DividerNormal | 6); // 1024 Hz
        Write(CmosRtc.RegisterB, CmosRtc.B24Hour | CmosRtc.BPeriodicEnable);
        long period = Second / 1024;
        Assert.InRange(_rtc.NextDeadlineNs, period - 1, period + 1);
        _clock.NowNs = _rtc.NextDeadlineNs;
        _rtc.Update();
        Assert.True(_irq8);
        Assert.Equal(long.MaxValue, _rtc.NextDeadlineNs); // asserted until acknowledged
        Assert.Equal(CmosRtc.CIrq | CmosRtc.CPeriodic, Read(CmosRtc.RegisterC));
        Assert.False(_irq8);
        Assert.Equal(0, Read(CmosRtc.RegisterC));
        Assert.InRange(_rtc.NextDeadlineNs, (2 * period) - 1, (2 * period) + 1);
    }

    [Fact]
    public void Update_ended_interrupt_once_a_second_and_flags_without_enables_do_not_interrupt()
    {
        _clock.NowNs = Second + 1;
        _rtc.Update();
        Assert.False(_irq8); // PF and UF set, but nothing enabled
        Assert.Equal(CmosRtc.CPeriodic | CmosRtc.CUpdate, Read(CmosRtc.RegisterC));
        Write(CmosRtc.RegisterB, CmosRtc.B24Hour | CmosRtc.BUpdateEnable);
        Assert.Equal(2 * Second, _rtc.NextDeadlineNs);
        _clock.NowNs = 2 * Second;
        _rtc.Update();
        Assert.True(_irq8);
        Assert.NotEqual(0, Read(CmosRtc.RegisterC) & (CmosRtc.CIrq | CmosRtc.CUpdate));
    }

    [Fact]
    public void Alarm_fires_at_the_matching_second()
    {
        Write(CmosRtc.SecondsAlarm, 0x03);
        Write(CmosRtc.MinutesAlarm, 0xC0); // don't care
        Write(CmosRtc.HoursAlarm, 0xC0);
        Write(CmosRtc.RegisterB, CmosRtc.B24Hour | CmosRtc.BAlarmEnable);
        for (int s = 1; s <= 3; s++)
        {
            _clock.NowNs = s * Second;
            _rtc.Update();
            Assert.Equal(s == 3, _irq8);
        }

        Assert.NotEqual(0, Read(CmosRtc.RegisterC) & CmosRtc.CAlarm);
    }

    [Fact]
    public void The_nmi_mask_bit_is_not_part_of_the_index()
    {
        _bus.Out(Index, 1, 0x80 | CmosRtc.RegisterD);
        Assert.Equal(CmosRtc.DValidRam, (byte)_bus.In(Data, 1));
        Assert.True(_rtc.NmiMasked);
        Write(0x40, 0x5A); // plain CMOS RAM
        Assert.Equal(0x5A, Read(0x40));
        Assert.False(_rtc.NmiMasked);
    }

    [Fact]
    public void Memory_size_bytes_are_there_for_seabios()
    {
        Assert.Equal(640, Read(0x15) | (Read(0x16) << 8));
        Assert.Equal(0xFFFF, Read(0x17) | (Read(0x18) << 8)); // KiB above 1 MiB, capped at 0xFFFF as QEMU does
        Assert.Equal((256 - 16) * 16, Read(0x34) | (Read(0x35) << 8)); // 64 KiB units above 16 MiB
    }
}

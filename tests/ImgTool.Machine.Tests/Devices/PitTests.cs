using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;

namespace ImgTool.Machine.Tests.Devices;

/// <summary>The 8254 driven through the bus at its PC ports (0x40-0x43, 0x61) in virtual time, as Linux and the BIOS drive it.</summary>
public sealed class PitTests
{
    private const ushort Counter0 = 0x40, Counter2 = 0x42, Control = 0x43, PortB = 0x61;
    private const double NsPerTick = 1e9 / Pit8254.FrequencyHz;

    private readonly VirtualClock _clock = new();
    private readonly IoBus _bus = new();
    private readonly Pit8254 _pit;
    private int _irq0Edges;

    public PitTests()
    {
        _pit = new Pit8254(() => _clock.NowNs, level => _irq0Edges += level ? 1 : 0);
        _bus.Map(Counter0, Pit8254.PortCount, _pit);
        _bus.Map(PortB, 1, new SystemControlPortB(_pit, () => _clock.NowNs));
    }

    private void Out(ushort port, byte value) => _bus.Out(port, 1, value);

    private byte In(ushort port) => (byte)_bus.In(port, 1);

    private void AdvanceTicks(double ticks) => _clock.Advance((long)Math.Ceiling(ticks * NsPerTick));

    [Fact]
    public void Quick_pit_calibrate_sees_the_channel_2_msb_step_down_once_every_256_ticks()
    {
        // arch/x86/kernel/tsc.c quick_pit_calibrate: gate high, speaker off, counter 2 mode 0 binary from
        // 0xFFFF, then pairs of reads (LSB discarded, MSB compared) while the MSB counts down.
        Out(PortB, (byte)((In(PortB) & ~SystemControlPortB.SpeakerData) | SystemControlPortB.Timer2Gate));
        Out(Control, 0xB0);
        Out(Counter2, 0xFF);
        Out(Counter2, 0xFF);

        var firstSeenNs = new Dictionary<int, long>();
        for (int i = 0; i < 4000; i++)
        {
            _ = In(Counter2);
            int msb = In(Counter2);
            firstSeenNs.TryAdd(msb, _clock.NowNs);
            _clock.Advance(1000); // a pair of reads per microsecond
        }

        for (int msb = 0xFF; msb >= 0xF0; msb--)
        {
            Assert.True(firstSeenNs.ContainsKey(msb), $"MSB 0x{msb:X2} never read");
        }

        for (int msb = 0xFE; msb >= 0xF0; msb--)
        {
            double stepUs = (firstSeenNs[msb] - firstSeenNs[msb + 1]) / 1000.0;
            Assert.InRange(stepUs, 256 * NsPerTick / 1000 - 1.01, 256 * NsPerTick / 1000 + 1.01);
        }

        Assert.Equal(0xFF, firstSeenNs.Keys.Max());
    }

    [Fact]
    public void Pit_calibrate_tsc_sees_out2_rise_after_the_latch_in_mode_0()
    {
        // pit_calibrate_tsc(latch = PIT_TICK_RATE / (1000 / 50), 50 ms): counter 2 mode 0, LSB then MSB,
        // then poll port 0x61 bit 5 until OUT2 goes high at terminal count.
        const int latch = 1_193_182 / (1000 / 50);
        Out(PortB, (byte)((In(PortB) & ~SystemControlPortB.SpeakerData) | SystemControlPortB.Timer2Gate));
        Out(Control, 0xB0);
        Out(Counter2, latch & 0xFF);
        Out(Counter2, latch >> 8);

        long start = _clock.NowNs;
        int polls = 0;
        while ((In(PortB) & SystemControlPortB.Timer2Output) == 0)
        {
            _clock.Advance(100);
            polls++;
            Assert.True(polls < 1_000_000, "OUT2 never rose");
        }

        double elapsedMs = (_clock.NowNs - start) / 1e6;
        Assert.InRange(elapsedMs, 49.99, 50.01);
        Assert.True(polls > 1000, "Linux rejects a calibration with fewer than 1000 polls");
    }

    [Fact]
    public void Counter_2_read_msb_only_in_mode_0()
    {
        Out(PortB, SystemControlPortB.Timer2Gate);
        Out(Control, 0xA0); // counter 2, MSB only, mode 0
        Out(Counter2, 0x12); // count 0x1200
        Assert.Equal(0x12, In(Counter2));
        AdvanceTicks(0x100);
        Assert.Equal(0x11, In(Counter2));
        Assert.Equal(0x11, In(Counter2)); // every read is the MSB: no LSB/MSB flip-flop
    }

    [Fact]
    public void Gate_low_suspends_mode_0_counting_and_out2_stays_low()
    {
        Out(PortB, SystemControlPortB.Timer2Gate);
        Out(Control, 0xB0);
        Out(Counter2, 100);
        Out(Counter2, 0);
        AdvanceTicks(40);
        Out(PortB, 0); // gate low
        AdvanceTicks(1000);
        Assert.Equal(0, In(PortB) & SystemControlPortB.Timer2Output);
        Assert.Equal(60, In(Counter2) | (In(Counter2) << 8));
        Out(PortB, SystemControlPortB.Timer2Gate);
        AdvanceTicks(60);
        Assert.NotEqual(0, In(PortB) & SystemControlPortB.Timer2Output);
    }

    [Fact]
    public void Mode_2_on_counter_0_gives_one_irq0_edge_per_period_and_a_deadline_to_skip_to()
    {
        // Linux's PIT clockevent, periodic: 0x34 then LATCH = 11932 (HZ 100) LSB, MSB.
        const int latch = 11932;
        Out(Control, 0x34);
        Out(Counter0, latch & 0xFF);
        Out(Counter0, latch >> 8);
        double periodNs = latch * NsPerTick;
        Assert.InRange(_pit.NextDeadlineNs, periodNs, periodNs + 2);

        for (int ms = 0; ms < 35; ms++)
        {
            _clock.Advance(1_000_000);
            _pit.Update();
        }

        Assert.Equal(3, _irq0Edges);
        Assert.InRange(_pit.NextDeadlineNs, 4 * periodNs, 4 * periodNs + 2);
    }

    [Fact]
    public void A_new_mode_2_count_written_while_counting_takes_effect_at_the_end_of_the_period()
    {
        Out(Control, 0x34);
        Out(Counter0, 100);
        Out(Counter0, 0);
        AdvanceTicks(30.5);
        Out(Counter0, 50);
        Out(Counter0, 0);
        Assert.Equal(70, In(Counter0) | (In(Counter0) << 8)); // the old period goes on
        AdvanceTicks(70);
        _pit.Update();
        Assert.Equal(1, _irq0Edges);
        AdvanceTicks(20);
        Assert.Equal(30, In(Counter0) | (In(Counter0) << 8)); // now counting the new count
        Assert.InRange(_pit.NextDeadlineNs, _clock.NowNs + (29 * NsPerTick), _clock.NowNs + (31 * NsPerTick));
        AdvanceTicks(30);
        _pit.Update();
        Assert.Equal(2, _irq0Edges);
    }

    [Fact]
    public void Mode_0_one_shot_rewritten_without_a_control_word_restarts_as_linux_pit_next_event_does()
    {
        Out(Control, 0x30); // counter 0, LSB/MSB, mode 0
        Out(Counter0, 100);
        Out(Counter0, 0);
        AdvanceTicks(50);
        Out(Counter0, 200); // pit_next_event: the new delta, LSB then MSB
        Out(Counter0, 0);
        AdvanceTicks(150);
        _pit.Update();
        Assert.Equal(0, _irq0Edges);
        Assert.False(_pit.Output0);
        AdvanceTicks(51);
        _pit.Update();
        Assert.Equal(1, _irq0Edges);
        Assert.True(_pit.Output0);
        AdvanceTicks(100_000);
        _pit.Update();
        Assert.Equal(1, _irq0Edges); // a one-shot fires once
        Assert.Equal(long.MaxValue, _pit.NextDeadlineNs);
    }

    [Fact]
    public void Mode_3_square_wave_is_high_for_the_first_half_period_and_counts_down_by_two()
    {
        Out(Control, 0x36); // the BIOS's setting: counter 0, LSB/MSB, mode 3
        Out(Counter0, 100);
        Out(Counter0, 0);
        AdvanceTicks(10.5);
        Assert.True(_pit.Output0);
        Assert.Equal(80, In(Counter0) | (In(Counter0) << 8));
        AdvanceTicks(50);
        Assert.False(_pit.Output0);
        AdvanceTicks(40);
        Assert.True(_pit.Output0);
    }

    [Fact]
    public void Mode_1_and_mode_5_start_on_the_gate_rising_edge()
    {
        Out(Control, 0xB2); // counter 2, LSB/MSB, mode 1
        Out(Counter2, 50);
        Out(Counter2, 0);
        Assert.NotEqual(0, In(PortB) & SystemControlPortB.Timer2Output); // OUT high until triggered
        AdvanceTicks(500);
        Out(PortB, SystemControlPortB.Timer2Gate); // trigger
        AdvanceTicks(1);
        Assert.Equal(0, In(PortB) & SystemControlPortB.Timer2Output);
        AdvanceTicks(50);
        Assert.NotEqual(0, In(PortB) & SystemControlPortB.Timer2Output);

        Out(PortB, 0);
        Out(Control, 0xBA); // mode 5: a one-tick strobe N ticks after the trigger
        Out(Counter2, 20);
        Out(Counter2, 0);
        Out(PortB, SystemControlPortB.Timer2Gate);
        AdvanceTicks(19.5);
        Assert.NotEqual(0, In(PortB) & SystemControlPortB.Timer2Output);
        AdvanceTicks(0.6);
        Assert.Equal(0, In(PortB) & SystemControlPortB.Timer2Output);
        AdvanceTicks(1);
        Assert.NotEqual(0, In(PortB) & SystemControlPortB.Timer2Output);
    }

    [Fact]
    public void Mode_4_strobes_out_low_for_one_tick_at_terminal_count_and_raises_irq0_after_it()
    {
        Out(Control, 0x38); // counter 0, LSB/MSB, mode 4
        Out(Counter0, 30);
        Out(Counter0, 0);
        AdvanceTicks(29.5);
        Assert.True(_pit.Output0);
        AdvanceTicks(0.6);
        Assert.False(_pit.Output0);
        _pit.Update();
        Assert.Equal(0, _irq0Edges);
        AdvanceTicks(1);
        Assert.True(_pit.Output0);
        _pit.Update();
        Assert.Equal(1, _irq0Edges);
    }

    [Fact]
    public void Read_back_latches_status_then_count_and_reports_null_count_until_the_count_is_loaded()
    {
        Out(Control, 0x34); // counter 0, LSB/MSB, mode 2
        Out(Control, 0xE2); // read-back STATUS only, counter 0
        Assert.Equal(0x40 | 0x30 | (2 << 1) | 0x80, In(Counter0)); // OUT high, null count, LSB/MSB, mode 2

        Out(Counter0, 0x00);
        Out(Counter0, 0x10); // 0x1000
        AdvanceTicks(16.5);
        Out(Control, 0xC2); // read-back COUNT and STATUS, counter 0
        AdvanceTicks(1000); // latched values do not move
        Assert.Equal(0x80 | 0x30 | (2 << 1), In(Counter0)); // null count clear now
        Assert.Equal(0x1000 - 16, In(Counter0) | (In(Counter0) << 8));
        Assert.Equal(0x1000 - 1016, In(Counter0) | (In(Counter0) << 8)); // latch released: live again
    }

    [Fact]
    public void Counter_latch_command_holds_the_first_latch_until_it_is_read()
    {
        Out(Control, 0x34);
        Out(Counter0, 0x00);
        Out(Counter0, 0x20);
        AdvanceTicks(100.5);
        Out(Control, 0x00); // latch counter 0
        AdvanceTicks(50);
        Out(Control, 0x00); // ignored: the first latch is still unread
        Assert.Equal(0x2000 - 100, In(Counter0) | (In(Counter0) << 8));
    }

    [Fact]
    public void Bcd_counting_uses_four_decimal_digits()
    {
        Out(Control, 0x31); // counter 0, LSB/MSB, mode 0, BCD
        Out(Counter0, 0x00);
        Out(Counter0, 0x10); // 1000 decimal
        AdvanceTicks(1.5);
        Assert.Equal(0x0999, In(Counter0) | (In(Counter0) << 8));
        AdvanceTicks(999);
        Assert.True(_pit.Output0);
    }

    [Fact]
    public void Port_61_reports_the_speaker_bits_written_and_a_refresh_toggle()
    {
        Out(PortB, SystemControlPortB.Timer2Gate | SystemControlPortB.SpeakerData);
        Assert.Equal(3, In(PortB) & 3);
        int first = In(PortB) & SystemControlPortB.RefreshToggle;
        _clock.Advance(SystemControlPortB.RefreshPeriodNs);
        Assert.NotEqual(first, In(PortB) & SystemControlPortB.RefreshToggle);
    }
}

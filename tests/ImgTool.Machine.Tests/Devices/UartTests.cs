using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;

namespace ImgTool.Machine.Tests.Devices;

/// <summary>The 16550A at COM1 (0x3F8) through the bus, probed the way Linux's 8250 driver probes and starts it.</summary>
public sealed class UartTests
{
    private const ushort Com1 = 0x3F8;
    private const ushort Rx = Com1, Tx = Com1, Ier = Com1 + 1, Iir = Com1 + 2, Fcr = Com1 + 2, Efr = Com1 + 2, Lcr = Com1 + 3,
        Mcr = Com1 + 4, Lsr = Com1 + 5, Msr = Com1 + 6, Scr = Com1 + 7, Dll = Com1, Dlm = Com1 + 1;

    private const byte LcrConfModeA = 0x80, LcrConfModeB = 0xBF, LcrWordLength8 = 0x03;
    private const byte Fcr64Byte = 0x20, IerUue = 0x40;

    private readonly VirtualClock _clock = new();
    private readonly IoBus _bus = new();
    private readonly List<byte> _sent = [];
    private bool _irq;

    public UartTests() =>
        _bus.Map(Com1, Uart16550.PortCount, Uart = new Uart16550(_sent.Add, level => _irq = level, () => _clock.NowNs));

    private Uart16550 Uart { get; }

    private void Out(ushort port, byte value) => _bus.Out(port, 1, value);

    private byte In(ushort port) => (byte)_bus.In(port, 1);

    [Fact]
    public void Linux_autoconfig_identifies_a_16550a_with_a_16_byte_fifo()
    {
        Assert.Equal("16550A", Autoconfig());
        Assert.Equal(16, SizeFifo());
    }

    /// <summary>drivers/tty/serial/8250/8250_port.c autoconfig() and autoconfig_16550a(), the port I/O they do, in order.</summary>
    private string Autoconfig()
    {
        byte scratch = In(Ier);
        Out(Ier, 0);
        byte scratch2 = (byte)(In(Ier) & 0x0F);
        Out(Ier, 0x0F);
        byte scratch3 = (byte)(In(Ier) & 0x0F);
        Out(Ier, scratch);
        if (scratch2 != 0 || scratch3 != 0x0F)
        {
            return "none";
        }

        byte saveMcr = In(Mcr);
        Out(Mcr, Uart16550.McrLoop | 0x0A);
        byte status1 = (byte)(In(Msr) & 0xF0);
        Out(Mcr, saveMcr);
        if (status1 != 0x90)
        {
            return "loopback test failed";
        }

        Out(Lcr, LcrConfModeB);
        Out(Efr, 0);
        Out(Lcr, 0);
        Out(Fcr, Uart16550.FcrEnable);
        int kind = In(Iir) >> 6;
        if (kind != 3)
        {
            return kind == 0 ? "8250" : kind == 2 ? "16550" : "unknown";
        }

        Out(Lcr, LcrConfModeA);
        if (In(Efr) == 0)
        {
            return "ST16C650V1";
        }

        Out(Lcr, LcrConfModeB);
        if (In(Efr) == 0)
        {
            return "16650";
        }

        // National Semiconductor SuperIO: EXCR1 in bank 2 mirrors MCR LOOP.
        Out(Lcr, 0);
        status1 = In(Mcr);
        Out(Lcr, 0xE0);
        byte status2 = In(0x3FA);
        if (((status2 ^ status1) & Uart16550.McrLoop) == 0)
        {
            Out(Lcr, 0);
            Out(Mcr, (byte)(status1 ^ Uart16550.McrLoop));
            Out(Lcr, 0xE0);
            status2 = In(0x3FA);
            Out(Lcr, 0);
            Out(Mcr, status1);
            if (((status2 ^ status1) & Uart16550.McrLoop) != 0)
            {
                return "NS16550";
            }
        }

        Out(Lcr, 0);
        Out(Fcr, Uart16550.FcrEnable | Fcr64Byte);
        status1 = (byte)(In(Iir) >> 5);
        Out(Fcr, Uart16550.FcrEnable);
        Out(Lcr, LcrConfModeA);
        Out(Fcr, Uart16550.FcrEnable | Fcr64Byte);
        status2 = (byte)(In(Iir) >> 5);
        Out(Fcr, Uart16550.FcrEnable);
        Out(Lcr, 0);
        if (status1 == 6 && status2 == 7)
        {
            return "16750";
        }

        byte ierSave = In(Ier);
        Out(Ier, (byte)(ierSave & ~IerUue));
        if ((In(Ier) & IerUue) == 0)
        {
            Out(Ier, (byte)(ierSave | IerUue));
            if ((In(Ier) & IerUue) != 0)
            {
                return "XScale";
            }
        }

        Out(Ier, ierSave);
        return "16550A";
    }

    /// <summary>size_fifo(): 256 bytes sent in loopback at divisor 1; the receiver keeps what its FIFO holds.</summary>
    private int SizeFifo()
    {
        Out(Lcr, 0);
        Out(Fcr, Uart16550.FcrEnable | Uart16550.FcrClearReceive | Uart16550.FcrClearTransmit);
        Out(Mcr, Uart16550.McrLoop);
        Out(Lcr, LcrConfModeA);
        Out(Dll, 1);
        Out(Dlm, 0);
        Out(Lcr, LcrWordLength8);
        for (int count = 0; count < 256; count++)
        {
            Out(Tx, (byte)count);
        }

        _clock.Advance(20_000_000);
        int received = 0;
        while ((In(Lsr) & Uart16550.LsrDataReady) != 0 && received < 256)
        {
            Assert.Equal(received, In(Rx)); // the first 16 bytes, in order
            received++;
        }

        Assert.Empty(_sent); // loopback: nothing left the UART
        return received;
    }

    [Fact]
    public void Loopback_reflects_mcr_in_msr_with_delta_bits()
    {
        Out(Mcr, Uart16550.McrLoop);
        _ = In(Msr); // clear the deltas of entering loopback
        Out(Mcr, Uart16550.McrLoop | Uart16550.McrDtr | Uart16550.McrRts);
        Assert.Equal(Uart16550.MsrDsr | Uart16550.MsrCts | Uart16550.MsrDeltaDsr | Uart16550.MsrDeltaCts, In(Msr));
        Assert.Equal(Uart16550.MsrDsr | Uart16550.MsrCts, In(Msr)); // reading clears the deltas
        Out(Mcr, Uart16550.McrLoop | Uart16550.McrOut1);
        Out(Mcr, Uart16550.McrLoop);
        Assert.Equal(Uart16550.MsrDeltaDsr | Uart16550.MsrDeltaCts | Uart16550.MsrTrailingRi, In(Msr));
        Out(Mcr, 0);
        Assert.Equal(0xB0, In(Msr) & 0xF0); // outside loopback: CTS, DSR, DCD from the host end
    }

    [Fact]
    public void Thre_interrupt_is_raised_whenever_it_is_enabled_with_thr_empty_as_linux_startup_tests()
    {
        Out(Mcr, Uart16550.McrOut2);
        Out(Fcr, Uart16550.FcrEnable);

        // serial8250_do_startup's UART_BUG_THRE test: enable, read IIR, disable, enable, read IIR.
        Out(Ier, Uart16550.IerThrEmpty);
        Assert.True(_irq);
        Assert.Equal(Uart16550.IirFifosEnabled | Uart16550.IirThrEmpty, In(Iir));
        Assert.False(_irq); // reading IIR with THRE as the source clears it
        Assert.Equal(Uart16550.IirFifosEnabled | Uart16550.IirNoInterrupt, In(Iir));
        Out(Ier, 0);
        Out(Ier, Uart16550.IerThrEmpty);
        Assert.Equal(Uart16550.IirFifosEnabled | Uart16550.IirThrEmpty, In(Iir));

        Out(Tx, (byte)'A'); // sent at once; THR empty again asks for the next byte
        Assert.True(_irq);
        Assert.Equal("A"u8.ToArray(), _sent);
        Assert.Equal(Uart16550.LsrThrEmpty | Uart16550.LsrTransmitterEmpty, In(Lsr));
    }

    [Fact]
    public void Out2_gates_the_irq_line()
    {
        Out(Ier, Uart16550.IerThrEmpty);
        Assert.False(_irq);
        Out(Mcr, Uart16550.McrOut2);
        Assert.True(_irq);
    }

    [Fact]
    public void Received_data_outranks_thre_and_line_status_outranks_both()
    {
        Out(Mcr, Uart16550.McrLoop);
        Out(Fcr, Uart16550.FcrEnable); // trigger level 1
        Out(Ier, Uart16550.IerReceivedData | Uart16550.IerThrEmpty | Uart16550.IerLineStatus);
        Out(Tx, 0x41);
        Assert.Equal(Uart16550.IirFifosEnabled | Uart16550.IirReceivedData, In(Iir));
        Assert.Equal(0x41, In(Rx));
        Assert.Equal(Uart16550.IirFifosEnabled | Uart16550.IirThrEmpty, In(Iir));

        for (int i = 0; i < Uart16550.FifoBytes + 1; i++)
        {
            Out(Tx, (byte)i); // one more than the FIFO holds: overrun
        }

        Assert.Equal(Uart16550.IirFifosEnabled | Uart16550.IirLineStatus, In(Iir));
        Assert.NotEqual(0, In(Lsr) & Uart16550.LsrOverrun);
        Assert.Equal(0, In(Lsr) & Uart16550.LsrOverrun); // LSR read clears the error
        Assert.Equal(Uart16550.IirFifosEnabled | Uart16550.IirReceivedData, In(Iir));
    }

    [Fact]
    public void Data_below_the_trigger_level_raises_the_character_timeout_after_four_character_times()
    {
        Out(Mcr, Uart16550.McrLoop);
        Out(Lcr, LcrWordLength8); // 8N1: 10 bits a character
        Out(Fcr, Uart16550.FcrEnable | (1 << 6)); // trigger level 4
        Out(Ier, Uart16550.IerReceivedData);
        Out(Tx, 0x5A);
        Assert.Equal(Uart16550.IirFifosEnabled | Uart16550.IirNoInterrupt, In(Iir));

        long characterNs = 10 * 12 * 1_000_000_000L / 115_200; // divisor 12: 9600 baud
        Assert.Equal(4 * characterNs, Uart.NextDeadlineNs);
        _clock.Advance(4 * characterNs - 1);
        Assert.Equal(Uart16550.IirFifosEnabled | Uart16550.IirNoInterrupt, In(Iir));
        _clock.Advance(1);
        Assert.Equal(Uart16550.IirFifosEnabled | Uart16550.IirCharacterTimeout, In(Iir));
        Assert.Equal(long.MaxValue, Uart.NextDeadlineNs); // raised: nothing more to wait for
        Assert.Equal(0x5A, In(Rx));
        Assert.Equal(Uart16550.IirFifosEnabled | Uart16550.IirNoInterrupt, In(Iir));
    }

    [Fact]
    public void Without_fifos_iir_bits_7_6_are_clear_and_a_second_byte_overruns()
    {
        Out(Mcr, Uart16550.McrLoop);
        Out(Tx, 1);
        Out(Tx, 2);
        Assert.Equal(Uart16550.IirNoInterrupt, In(Iir));
        Assert.Equal(Uart16550.LsrDataReady | Uart16550.LsrOverrun | Uart16550.LsrThrEmpty | Uart16550.LsrTransmitterEmpty, In(Lsr));
        Assert.Equal(1, In(Rx));
    }

    [Fact]
    public void Modem_status_interrupt_comes_from_msr_deltas()
    {
        Out(Mcr, Uart16550.McrLoop);
        _ = In(Msr);
        Out(Ier, Uart16550.IerModemStatus);
        Out(Mcr, Uart16550.McrLoop | Uart16550.McrRts);
        Assert.Equal(Uart16550.IirModemStatus, In(Iir));
        _ = In(Msr);
        Assert.Equal(Uart16550.IirNoInterrupt, In(Iir));
    }

    [Fact]
    public void Divisor_latch_and_scratch_register_hold_what_was_written()
    {
        Out(Lcr, Uart16550.LcrDivisorLatch);
        Out(Dll, 0x01);
        Out(Dlm, 0x02);
        Assert.Equal(0x01, In(Dll));
        Assert.Equal(0x02, In(Dlm));
        Out(Lcr, LcrWordLength8);
        Assert.Equal(0, In(Ier)); // DLM and IER are different registers
        Out(Scr, 0xA5);
        Assert.Equal(0xA5, In(Scr));
        Out(Tx, (byte)'x');
        Assert.Equal("x"u8.ToArray(), _sent);
    }
}

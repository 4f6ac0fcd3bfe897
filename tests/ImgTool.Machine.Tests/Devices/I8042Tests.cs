using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Tests.Devices;

/// <summary>The i8042 at 0x60/0x64 and port 0x92 through the bus, as SeaBIOS and Linux's i8042/atkbd/psmouse drivers talk to them.</summary>
public sealed class I8042Tests
{
    private const ushort Data = 0x60, Command = 0x64, PortA = 0x92;
    private const uint A20Off = 0xFFEFFFFF, A20On = 0xFFFFFFFF;

    private readonly IoBus _bus = new();
    private readonly PhysicalMemory _memory = new(2u << 20);
    private readonly List<ResetSource> _resets = [];
    private readonly I8042 _controller;
    private int _irq1Edges, _irq12Edges;
    private bool _irq1, _irq12;

    public I8042Tests()
    {
        var a20 = new A20Gate(_memory);
        _controller = new I8042(a20, _resets.Add, level => { _irq1Edges += level && !_irq1 ? 1 : 0; _irq1 = level; },
            level => { _irq12Edges += level && !_irq12 ? 1 : 0; _irq12 = level; });
        _bus.Map(Data, 1, _controller.At(I8042.DataPort));
        _bus.Map(Command, 1, _controller.At(I8042.CommandPort));
        _bus.Map(PortA, 1, new SystemControlPortA(a20, _resets.Add));
    }

    private void Out(ushort port, byte value) => _bus.Out(port, 1, value);

    private byte In(ushort port) => (byte)_bus.In(port, 1);

    private byte Status => In(Command);

    /// <summary>i8042_command: write the command, its parameter if any, then read the reply once OBF is set.</summary>
    private byte[] Command8042(byte command, byte? parameter = null, int replies = 1)
    {
        Out(Command, command);
        if (parameter is { } p)
        {
            Assert.Equal(0, Status & I8042.StatusInputFull);
            Out(Data, p);
        }

        var bytes = new byte[replies];
        for (int i = 0; i < replies; i++)
        {
            Assert.NotEqual(0, Status & I8042.StatusOutputFull);
            bytes[i] = In(Data);
        }

        return bytes;
    }

    private byte WriteCommandByte(byte value)
    {
        Command8042(0x60, value, replies: 0);
        return Command8042(0x20)[0];
    }

    [Fact]
    public void Self_test_passes_and_sets_the_system_flag()
    {
        Assert.Equal([I8042.SelfTestPassed], Command8042(I8042.SelfTest));
        Assert.NotEqual(0, Status & I8042.StatusSystem);
        Assert.Equal(0, Status & I8042.StatusOutputFull);
        Assert.Equal([I8042.InterfaceOk], Command8042(I8042.TestKeyboard));
    }

    [Fact]
    public void The_command_byte_is_read_and_written_and_the_port_enables_show_in_it()
    {
        Assert.Equal(0x30, WriteCommandByte(0x30));
        Command8042(I8042.EnableAux, replies: 0);
        Command8042(I8042.EnableKeyboard, replies: 0);
        Assert.Equal(0x00, Command8042(0x20)[0]);
        Command8042(I8042.DisableAux, replies: 0);
        Assert.Equal(I8042.CtrAuxDisabled, Command8042(0x20)[0]);
        Command8042(I8042.DisableKeyboard, replies: 0);
        Assert.Equal(I8042.CtrAuxDisabled | I8042.CtrKeyboardDisabled, Command8042(0x20)[0]);
        Assert.NotEqual(0, Status & I8042.StatusCommand); // the last write went to 0x64
    }

    [Fact]
    public void The_keyboard_acknowledges_resets_and_identifies_itself()
    {
        Out(Data, I8042.KbdReset);
        Assert.Equal(I8042.KbdAck, In(Data));
        Assert.Equal(I8042.KbdSelfTestPassed, In(Data));
        Out(Data, I8042.KbdIdentify);
        Assert.Equal([I8042.KbdAck, I8042.KbdIdFirst, I8042.KbdIdSecondTranslated], new[] { In(Data), In(Data), In(Data) });
        WriteCommandByte(0x00); // translation off: the raw set 2 ID
        Out(Data, I8042.KbdIdentify);
        Assert.Equal([I8042.KbdAck, I8042.KbdIdFirst, I8042.KbdIdSecond], new[] { In(Data), In(Data), In(Data) });
        Out(Data, I8042.KbdSetLeds);
        Assert.Equal(I8042.KbdAck, In(Data));
        Out(Data, 0x07); // the LED parameter is acknowledged too, not taken as a command
        Assert.Equal(I8042.KbdAck, In(Data));
        Assert.Equal(0, Status & I8042.StatusOutputFull);
    }

    [Fact]
    public void Each_keyboard_byte_is_its_own_irq1_edge_when_enabled()
    {
        WriteCommandByte(I8042.CtrKeyboardInterrupt | I8042.CtrTranslate);
        _irq1Edges = 0;
        Out(Data, I8042.KbdReset);
        Assert.True(_irq1);
        _ = In(Data);
        Assert.True(_irq1);
        _ = In(Data);
        Assert.False(_irq1);
        Assert.Equal(2, _irq1Edges);
    }

    [Fact]
    public void Aux_loopback_echoes_with_the_aux_bit_and_irq12_as_linux_i8042_check_aux_tests()
    {
        WriteCommandByte(I8042.CtrAuxInterrupt);
        Assert.Equal([0x5A], Command8042(I8042.WriteAuxBuffer, 0x5A));
        Out(Command, I8042.WriteAuxBuffer);
        Out(Data, 0xA5);
        Assert.Equal(I8042.StatusOutputFull | I8042.StatusAuxData, Status & (I8042.StatusOutputFull | I8042.StatusAuxData));
        Assert.True(_irq12);
        Assert.Equal(0xA5, In(Data));
        Assert.False(_irq12);
    }

    [Fact]
    public void A_write_to_the_absent_mouse_times_out_at_once()
    {
        Out(Command, I8042.WriteAux);
        Out(Data, 0xFF); // psmouse: reset
        Assert.Equal(I8042.StatusOutputFull | I8042.StatusAuxData | I8042.StatusTimeout,
            Status & (I8042.StatusOutputFull | I8042.StatusAuxData | I8042.StatusTimeout));
        Assert.Equal(I8042.NoDeviceResponse, In(Data));
        Assert.Equal(0, Status & I8042.StatusTimeout);
    }

    [Fact]
    public void The_output_port_carries_a20_and_the_reset_line()
    {
        Assert.Equal(A20On, _memory.A20Mask);
        Command8042(I8042.WriteOutputPort, I8042.OutResetInactive, replies: 0); // A20 off
        Assert.Equal(A20Off, _memory.A20Mask);
        Assert.Equal(I8042.OutResetInactive, Command8042(I8042.ReadOutputPort)[0] & (I8042.OutResetInactive | I8042.OutA20));
        Command8042(I8042.WriteOutputPort, I8042.OutResetInactive | I8042.OutA20, replies: 0);
        Assert.Equal(A20On, _memory.A20Mask);
        Assert.Empty(_resets);
        Command8042(I8042.WriteOutputPort, I8042.OutA20, replies: 0); // reset line low
        Assert.Equal([ResetSource.KeyboardController], _resets);
    }

    [Fact]
    public void Command_fe_pulses_the_reset_line_and_ff_pulses_nothing()
    {
        Out(Command, 0xFF);
        Assert.Empty(_resets);
        Out(Command, 0xFE); // Linux's reboot=kbd
        Assert.Equal([ResetSource.KeyboardController], _resets);
    }

    [Fact]
    public void Port_92_fast_a20_is_ored_with_the_i8042_and_bit_0_resets_on_its_rising_edge()
    {
        Command8042(I8042.WriteOutputPort, I8042.OutResetInactive, replies: 0);
        Assert.Equal(A20Off, _memory.A20Mask);
        Out(PortA, SystemControlPortA.FastA20);
        Assert.Equal(A20On, _memory.A20Mask);
        Assert.Equal(SystemControlPortA.FastA20, In(PortA));
        Out(PortA, 0);
        Assert.Equal(A20Off, _memory.A20Mask);
        Assert.Empty(_resets);
        Out(PortA, SystemControlPortA.FastReset);
        Out(PortA, SystemControlPortA.FastReset); // still high: no new edge
        Assert.Equal([ResetSource.SystemControlPortA], _resets);
    }
}

using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// The 8042 keyboard controller (ports 0x60 data, 0x64 status/command; IBM PS/2 technical reference,
/// "Keyboard/Auxiliary Device Controller") with a keyboard on its first port and an auxiliary port
/// with nothing plugged in. It answers what SeaBIOS and Linux's i8042 and atkbd drivers ask: the
/// command byte, self-tests, port enable/disable, the output port (A20 and the CPU reset line),
/// loopback writes to either output buffer, a keyboard that acknowledges and identifies itself, and
/// aux-device writes that time out the way a controller with no mouse reports it (0xFE with the
/// timeout bit), so psmouse gives up at once instead of waiting. IRQ 1 and IRQ 12 follow the output
/// buffer when the command byte enables them.
/// </summary>
internal sealed class I8042
{
    public const ushort DataPort = 0x60, CommandPort = 0x64;

    // Status register bits.
    public const byte StatusOutputFull = 0x01, StatusInputFull = 0x02, StatusSystem = 0x04, StatusCommand = 0x08,
        StatusUnlocked = 0x10, StatusAuxData = 0x20, StatusTimeout = 0x40;

    // Command byte (controller RAM byte 0) bits.
    public const byte CtrKeyboardInterrupt = 0x01, CtrAuxInterrupt = 0x02, CtrSystem = 0x04, CtrKeyboardDisabled = 0x10,
        CtrAuxDisabled = 0x20, CtrTranslate = 0x40;

    // Output port bits (commands 0xD0/0xD1).
    public const byte OutResetInactive = 0x01, OutA20 = 0x02, OutKeyboardFull = 0x10, OutAuxFull = 0x20;

    // Controller commands.
    public const byte ReadRamFirst = 0x20, ReadRamLast = 0x3F, WriteRamFirst = 0x60, WriteRamLast = 0x7F,
        DisableAux = 0xA7, EnableAux = 0xA8, TestAux = 0xA9, SelfTest = 0xAA, TestKeyboard = 0xAB, DisableKeyboard = 0xAD,
        EnableKeyboard = 0xAE, ReadInputPort = 0xC0, ReadOutputPort = 0xD0, WriteOutputPort = 0xD1,
        WriteKeyboardBuffer = 0xD2, WriteAuxBuffer = 0xD3, WriteAux = 0xD4, DisableA20 = 0xDD, EnableA20 = 0xDF,
        ReadTestInputs = 0xE0, PulseFirst = 0xF0;

    // Replies.
    public const byte SelfTestPassed = 0x55, InterfaceOk = 0x00, NoDeviceResponse = 0xFE;

    // Keyboard commands and replies (IBM PS/2 keyboard, "Commands from the System").
    public const byte KbdSetLeds = 0xED, KbdEcho = 0xEE, KbdScanCodeSet = 0xF0, KbdIdentify = 0xF2, KbdTypematic = 0xF3,
        KbdReset = 0xFF, KbdAck = 0xFA, KbdSelfTestPassed = 0xAA, KbdIdFirst = 0xAB, KbdIdSecond = 0x83,
        KbdIdSecondTranslated = 0x41, KbdScanCodeSet2 = 0x02;

    private const int RamBytes = 32, CommandByteAddress = 0;
    private const byte PulseResetLine = 0x01;
    private const byte InputPortKeyboardUnlocked = 0x80;
    private const byte InitialCommandByte = CtrKeyboardInterrupt | CtrSystem | CtrTranslate;

    private readonly A20Gate _a20;
    private readonly Action<ResetSource> _reset;
    private readonly Action<bool> _irq1;
    private readonly Action<bool> _irq12;
    private readonly Queue<(byte Value, bool Aux, bool Timeout)> _output = new();
    private readonly byte[] _ram = new byte[RamBytes];
    private byte _pendingCommand;
    private byte _pendingKeyboardCommand;
    private bool _lastWriteWasCommand;
    private bool _irq1Level, _irq12Level;

    public I8042(A20Gate a20, Action<ResetSource> reset, Action<bool>? irq1 = null, Action<bool>? irq12 = null)
    {
        _a20 = a20;
        _reset = reset;
        _irq1 = irq1 ?? (_ => { });
        _irq12 = irq12 ?? (_ => { });
        _ram[CommandByteAddress] = InitialCommandByte;
    }

    public byte CommandByte => _ram[CommandByteAddress];

    /// <summary>The bus device for <see cref="DataPort"/> or <see cref="CommandPort"/>: the controller is decoded at two one-port ranges.</summary>
    public IPortDevice At(ushort port) => new PortView(this, port);

    public uint ReadPort(ushort port, int sizeBytes)
    {
        if (port == CommandPort)
        {
            return Status();
        }

        if (port != DataPort || _output.Count == 0)
        {
            return 0; // an empty output buffer reads as its last value on hardware; nothing relies on it
        }

        byte value = _output.Dequeue().Value;

        // Reading empties the output buffer, which drops the IRQ; the next byte then fills it and
        // raises it again: an edge per byte, as the PIC needs.
        LowerIrqs();
        UpdateIrqs();
        return value;
    }

    public void WritePort(ushort port, byte value)
    {
        if (port == CommandPort)
        {
            _lastWriteWasCommand = true;
            Command(value);
        }
        else if (port == DataPort)
        {
            _lastWriteWasCommand = false;
            Data(value);
        }

        UpdateIrqs();
    }

    private byte Status()
    {
        byte status = StatusUnlocked;
        if ((CommandByte & CtrSystem) != 0)
        {
            status |= StatusSystem;
        }

        if (_lastWriteWasCommand)
        {
            status |= StatusCommand;
        }

        if (_output.TryPeek(out var head))
        {
            status |= StatusOutputFull;
            status |= head.Aux ? StatusAuxData : (byte)0;
            status |= head.Timeout ? StatusTimeout : (byte)0;
        }

        return status; // IBF is never set: every write is consumed at once
    }

    private void Command(byte command)
    {
        _pendingCommand = 0;
        switch (command)
        {
            case >= ReadRamFirst and <= ReadRamLast:
                Reply(_ram[command - ReadRamFirst]);
                break;
            case >= WriteRamFirst and <= WriteRamLast:
            case WriteOutputPort or WriteKeyboardBuffer or WriteAuxBuffer or WriteAux:
                _pendingCommand = command;
                break;
            case DisableAux: _ram[CommandByteAddress] |= CtrAuxDisabled; break;
            case EnableAux: _ram[CommandByteAddress] &= unchecked((byte)~CtrAuxDisabled); break;
            case TestAux: Reply(InterfaceOk); break;
            case SelfTest:
                _ram[CommandByteAddress] |= CtrSystem; // a passed self-test sets the system flag
                Reply(SelfTestPassed);
                break;
            case TestKeyboard: Reply(InterfaceOk); break;
            case DisableKeyboard: _ram[CommandByteAddress] |= CtrKeyboardDisabled; break;
            case EnableKeyboard: _ram[CommandByteAddress] &= unchecked((byte)~CtrKeyboardDisabled); break;
            case ReadInputPort: Reply(InputPortKeyboardUnlocked); break;
            case ReadOutputPort: Reply(OutputPort()); break;
            case DisableA20: _a20.KeyboardController = false; break;
            case EnableA20: _a20.KeyboardController = true; break;
            case ReadTestInputs: Reply(0); break;
            case >= PulseFirst:
                // Pulse output port bits 0-3 for those that are 0 in the command: bit 0 is the CPU reset.
                if ((command & PulseResetLine) == 0)
                {
                    _reset(ResetSource.KeyboardController);
                }

                break;
        }
    }

    private void Data(byte value)
    {
        byte command = _pendingCommand;
        _pendingCommand = 0;
        switch (command)
        {
            case >= WriteRamFirst and <= WriteRamLast:
                _ram[command - WriteRamFirst] = value;
                break;
            case WriteOutputPort:
                _a20.KeyboardController = (value & OutA20) != 0;
                if ((value & OutResetInactive) == 0)
                {
                    _reset(ResetSource.KeyboardController);
                }

                break;
            case WriteKeyboardBuffer:
                Reply(value);
                break;
            case WriteAuxBuffer:
                _output.Enqueue((value, Aux: true, Timeout: false)); // Linux's AUX loopback test and IRQ 12 test
                break;
            case WriteAux:
                // No mouse: the controller's transmit times out and it reports 0xFE with the timeout bit.
                _output.Enqueue((NoDeviceResponse, Aux: true, Timeout: true));
                break;
            default:
                _ram[CommandByteAddress] &= unchecked((byte)~CtrKeyboardDisabled); // writing to the keyboard enables its interface
                Keyboard(value);
                break;
        }
    }

    private void Keyboard(byte value)
    {
        if (_pendingKeyboardCommand != 0)
        {
            // The parameter byte of LED, scan code set or typematic commands.
            byte command = _pendingKeyboardCommand;
            _pendingKeyboardCommand = 0;
            Reply(KbdAck);
            if (command == KbdScanCodeSet && value == 0)
            {
                Reply(KbdScanCodeSet2); // "get current set"
            }

            return;
        }

        switch (value)
        {
            case KbdEcho:
                Reply(KbdEcho);
                break;
            case KbdReset:
                Reply(KbdAck);
                Reply(KbdSelfTestPassed);
                break;
            case KbdIdentify:
                Reply(KbdAck);
                Reply(KbdIdFirst);
                Reply((CommandByte & CtrTranslate) != 0 ? KbdIdSecondTranslated : KbdIdSecond);
                break;
            case KbdSetLeds or KbdScanCodeSet or KbdTypematic:
                _pendingKeyboardCommand = value;
                Reply(KbdAck);
                break;
            default:
                Reply(KbdAck);
                break;
        }
    }

    private byte OutputPort()
    {
        byte value = OutResetInactive;
        if (_a20.KeyboardController)
        {
            value |= OutA20;
        }

        if (_output.TryPeek(out var head))
        {
            value |= head.Aux ? OutAuxFull : OutKeyboardFull;
        }

        return value;
    }

    private void Reply(byte value) => _output.Enqueue((value, Aux: false, Timeout: false));

    private void LowerIrqs()
    {
        if (_irq1Level)
        {
            _irq1Level = false;
            _irq1(false);
        }

        if (_irq12Level)
        {
            _irq12Level = false;
            _irq12(false);
        }
    }

    private void UpdateIrqs()
    {
        bool full = _output.TryPeek(out var head);
        bool irq1 = full && !head.Aux && (CommandByte & CtrKeyboardInterrupt) != 0;
        bool irq12 = full && head.Aux && (CommandByte & CtrAuxInterrupt) != 0;
        if (irq1 != _irq1Level)
        {
            _irq1Level = irq1;
            _irq1(irq1);
        }

        if (irq12 != _irq12Level)
        {
            _irq12Level = irq12;
            _irq12(irq12);
        }
    }

    /// <summary>One of the controller's two ports as the bus sees it (the device is decoded at 0x60 and at 0x64).</summary>
    private sealed class PortView(I8042 controller, ushort port) : IPortDevice
    {
        public uint Read(ushort offset, int sizeBytes) => controller.ReadPort(port, sizeBytes);

        public void Write(ushort offset, int sizeBytes, uint value) => controller.WritePort(port, (byte)value);
    }
}

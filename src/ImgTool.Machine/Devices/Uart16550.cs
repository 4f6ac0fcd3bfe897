using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// A National Semiconductor PC16550D UART (datasheet, "Register Summary"): RBR/THR and the divisor
/// latch behind LCR.DLAB, IER, IIR/FCR with the 16-byte FIFOs, LCR, MCR with loopback, LSR, MSR and
/// the scratch register. Transmission is instant (each THR byte goes to the output sink, or in
/// loopback back into the receiver), so THR and the transmitter always read empty and a THRE
/// interrupt is raised whenever it is enabled, as Linux's 8250 driver expects of a real 16550A.
/// Receive is fed only by loopback (there is no host input). INTRPT reaches the IRQ line through MCR
/// OUT2, as on a PC; in loopback OUT2 is looped internally and the line stays low.
/// </summary>
internal sealed class Uart16550 : IPortDevice, ITimedDevice
{
    public const int PortCount = 8;
    public const int FifoBytes = 16;

    // Register offsets (DLL/DLM when LCR.DLAB is set).
    public const ushort Data = 0, InterruptEnable = 1, InterruptId = 2, FifoControl = 2, LineControl = 3,
        ModemControl = 4, LineStatus = 5, ModemStatus = 6, Scratch = 7;

    // IER.
    public const byte IerReceivedData = 0x01, IerThrEmpty = 0x02, IerLineStatus = 0x04, IerModemStatus = 0x08;
    private const byte IerWritable = 0x0F;

    // IIR: interrupt identification in bits 3-0 (datasheet table IV), bits 7-6 set with the FIFOs enabled.
    public const byte IirNoInterrupt = 0x01, IirLineStatus = 0x06, IirReceivedData = 0x04, IirCharacterTimeout = 0x0C,
        IirThrEmpty = 0x02, IirModemStatus = 0x00, IirFifosEnabled = 0xC0;

    // FCR.
    public const byte FcrEnable = 0x01, FcrClearReceive = 0x02, FcrClearTransmit = 0x04;
    private const int FcrTriggerShift = 6;
    private static readonly int[] TriggerLevels = [1, 4, 8, 14];

    // LCR.
    public const byte LcrDivisorLatch = 0x80;
    private const byte LcrWordLengthMask = 0x03, LcrTwoStopBits = 0x04, LcrParity = 0x08;

    // MCR: only bits 0-4 exist on a 16550A.
    public const byte McrDtr = 0x01, McrRts = 0x02, McrOut1 = 0x04, McrOut2 = 0x08, McrLoop = 0x10;
    private const byte McrWritable = 0x1F;

    // LSR.
    public const byte LsrDataReady = 0x01, LsrOverrun = 0x02, LsrThrEmpty = 0x20, LsrTransmitterEmpty = 0x40;
    private const byte LsrErrors = 0x1E;

    // MSR: deltas in bits 3-0, line states in bits 7-4.
    public const byte MsrDeltaCts = 0x01, MsrDeltaDsr = 0x02, MsrTrailingRi = 0x04, MsrDeltaDcd = 0x08,
        MsrCts = 0x10, MsrDsr = 0x20, MsrRi = 0x40, MsrDcd = 0x80;
    private const byte MsrDeltas = 0x0F;

    /// <summary>Outside loopback the host end is a connected modem: CTS, DSR and DCD asserted.</summary>
    private const byte HostModemLines = MsrCts | MsrDsr | MsrDcd;

    /// <summary>The divisor latch divides 1.8432 MHz / 16 = 115200 Hz into the bit rate.</summary>
    private const long DivisorClockHz = 115_200;
    private const int TimeoutCharacters = 4, StartBits = 1, MinWordBits = 5;
    private const long NsPerSecond = 1_000_000_000;

    private readonly Action<byte> _output;
    private readonly Action<bool> _irq;
    private readonly Func<long> _nowNs;
    private readonly Queue<byte> _receive = new(FifoBytes);
    private byte _ier, _lcr, _mcr, _scr, _lsrErrors;
    private byte _modemLines = HostModemLines, _msrDeltas;
    private bool _fifoEnabled;
    private int _triggerLevel = 1;
    private ushort _divisor = 12;
    private bool _thrInterrupt;
    private long _lastReceiveActivityNs;
    private bool _irqLevel;

    public Uart16550(Action<byte> output, Action<bool> irq, Func<long> nowNs)
    {
        _output = output;
        _irq = irq;
        _nowNs = nowNs;
    }

    private bool Dlab => (_lcr & LcrDivisorLatch) != 0;

    private bool Loopback => (_mcr & McrLoop) != 0;

    /// <summary>
    /// When a FIFO below its trigger level raises the character timeout (4 character times after the
    /// last activity); once that time has passed the indication stands until the guest reads, so
    /// there is no further deadline (a HLT must not wait on one that never moves).
    /// </summary>
    public long NextDeadlineNs
    {
        get
        {
            long deadline = TimeoutDeadlineNs;
            return deadline > _nowNs() ? deadline : long.MaxValue;
        }
    }

    private long TimeoutDeadlineNs =>
        TimeoutArmed ? _lastReceiveActivityNs + (TimeoutCharacters * CharacterNs) : long.MaxValue;

    public void Update() => UpdateIrq();

    private bool TimeoutArmed => _fifoEnabled && (_ier & IerReceivedData) != 0 && _receive.Count is > 0 && _receive.Count < _triggerLevel;

    /// <summary>Start, data, parity and stop bits of one character at the divisor's bit rate.</summary>
    private long CharacterNs
    {
        get
        {
            int bits = StartBits + MinWordBits + (_lcr & LcrWordLengthMask) + ((_lcr & LcrParity) != 0 ? 1 : 0) +
                ((_lcr & LcrTwoStopBits) != 0 ? 2 : 1);
            return bits * Math.Max((int)_divisor, 1) * NsPerSecond / DivisorClockHz;
        }
    }

    public uint Read(ushort offset, int sizeBytes)
    {
        switch (offset)
        {
            case Data:
                return Dlab ? (uint)(_divisor & 0xFF) : ReadReceiver();
            case InterruptEnable:
                return Dlab ? (uint)(_divisor >> 8) : _ier;
            case InterruptId:
            {
                byte id = Identify();
                if (id == IirThrEmpty)
                {
                    _thrInterrupt = false; // reading IIR with THRE the source clears it (datasheet table IV)
                    UpdateIrq();
                }

                return (uint)(id | (_fifoEnabled ? IirFifosEnabled : 0));
            }

            case LineControl:
                return _lcr;
            case ModemControl:
                return _mcr;
            case LineStatus:
            {
                uint lsr = (uint)(LsrThrEmpty | LsrTransmitterEmpty | _lsrErrors | (_receive.Count > 0 ? LsrDataReady : 0));
                _lsrErrors = 0;
                UpdateIrq();
                return lsr;
            }

            case ModemStatus:
            {
                uint msr = (uint)(_modemLines | _msrDeltas);
                _msrDeltas = 0;
                UpdateIrq();
                return msr;
            }

            default:
                return _scr;
        }
    }

    public void Write(ushort offset, int sizeBytes, uint value)
    {
        byte b = (byte)value;
        switch (offset)
        {
            case Data when Dlab:
                _divisor = (ushort)((_divisor & 0xFF00) | b);
                break;
            case Data:
                Transmit(b);
                break;
            case InterruptEnable when Dlab:
                _divisor = (ushort)((_divisor & 0x00FF) | (b << 8));
                break;
            case InterruptEnable:
            {
                bool thrWasEnabled = (_ier & IerThrEmpty) != 0;
                _ier = (byte)(b & IerWritable);

                // Enabling THRE with THR empty raises it at once (Linux's startup test for UART_BUG_THRE
                // writes IER twice and expects the interrupt each time).
                if ((_ier & IerThrEmpty) != 0 && !thrWasEnabled)
                {
                    _thrInterrupt = true;
                }

                UpdateIrq();
                break;
            }

            case FifoControl:
                WriteFifoControl(b);
                break;
            case LineControl:
                _lcr = b;
                break;
            case ModemControl:
                _mcr = (byte)(b & McrWritable);
                SetModemLines(Loopback ? LoopedModemLines() : HostModemLines);
                UpdateIrq();
                break;
            case Scratch:
                _scr = b;
                break;
            default:
                break; // LSR and MSR are read-only (writes are for factory test)
        }
    }

    private uint ReadReceiver()
    {
        if (_receive.Count == 0)
        {
            return 0;
        }

        byte value = _receive.Dequeue();
        _lastReceiveActivityNs = _nowNs();
        UpdateIrq();
        return value;
    }

    private void Transmit(byte value)
    {
        if (Loopback)
        {
            Receive(value); // the transmitter's serial output is looped to the receiver input
        }
        else
        {
            _output(value);
        }

        // Transmission is instant: THR is empty again and asks for the next byte.
        _thrInterrupt = true;
        UpdateIrq();
    }

    private void Receive(byte value)
    {
        int capacity = _fifoEnabled ? FifoBytes : 1;
        if (_receive.Count >= capacity)
        {
            _lsrErrors |= LsrOverrun; // the character in the shift register is lost; the FIFO keeps its contents
        }
        else
        {
            _receive.Enqueue(value);
        }

        _lastReceiveActivityNs = _nowNs();
    }

    private void WriteFifoControl(byte value)
    {
        bool enable = (value & FcrEnable) != 0;
        if (enable != _fifoEnabled)
        {
            _receive.Clear(); // changing FCR0 resets both FIFOs (datasheet, "FIFO Control Register")
        }

        _fifoEnabled = enable;
        if (enable)
        {
            if ((value & FcrClearReceive) != 0)
            {
                _receive.Clear();
            }

            _triggerLevel = TriggerLevels[value >> FcrTriggerShift];
        }
        else
        {
            _triggerLevel = 1;
        }

        UpdateIrq();
    }

    /// <summary>In loopback DTR, RTS, OUT1 and OUT2 drive DSR, CTS, RI and DCD (datasheet, MCR bit 4).</summary>
    private byte LoopedModemLines() =>
        (byte)(((_mcr & McrDtr) != 0 ? MsrDsr : 0) | ((_mcr & McrRts) != 0 ? MsrCts : 0) |
            ((_mcr & McrOut1) != 0 ? MsrRi : 0) | ((_mcr & McrOut2) != 0 ? MsrDcd : 0));

    private void SetModemLines(byte lines)
    {
        byte changed = (byte)(lines ^ _modemLines);
        if ((changed & MsrCts) != 0)
        {
            _msrDeltas |= MsrDeltaCts;
        }

        if ((changed & MsrDsr) != 0)
        {
            _msrDeltas |= MsrDeltaDsr;
        }

        if ((changed & MsrDcd) != 0)
        {
            _msrDeltas |= MsrDeltaDcd;
        }

        if ((_modemLines & MsrRi) != 0 && (lines & MsrRi) == 0)
        {
            _msrDeltas |= MsrTrailingRi; // trailing edge of ring indicator only
        }

        _modemLines = lines;
    }

    /// <summary>The highest-priority pending interrupt (datasheet table IV), or "none".</summary>
    private byte Identify()
    {
        if ((_ier & IerLineStatus) != 0 && (_lsrErrors & LsrErrors) != 0)
        {
            return IirLineStatus;
        }

        if ((_ier & IerReceivedData) != 0 && _receive.Count >= _triggerLevel)
        {
            return IirReceivedData;
        }

        if (TimeoutArmed && _nowNs() >= TimeoutDeadlineNs)
        {
            return IirCharacterTimeout;
        }

        if ((_ier & IerThrEmpty) != 0 && _thrInterrupt)
        {
            return IirThrEmpty;
        }

        if ((_ier & IerModemStatus) != 0 && (_msrDeltas & MsrDeltas) != 0)
        {
            return IirModemStatus;
        }

        return IirNoInterrupt;
    }

    private void UpdateIrq()
    {
        bool level = Identify() != IirNoInterrupt && (_mcr & McrOut2) != 0 && !Loopback;
        if (level != _irqLevel)
        {
            _irqLevel = level;
            _irq(level);
        }
    }
}

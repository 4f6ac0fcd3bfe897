using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// One Intel 8259A programmable interrupt controller (datasheet 231468): the command port (offset 0:
/// ICW1, OCW2, OCW3; reads IRR, ISR or the poll word) and the data port (offset 1: ICW2-ICW4, OCW1
/// mask). Priority is fully nested with optional rotation; special mask mode lets masked in-service
/// levels stop blocking lower ones. A line is level-triggered when ICW1.LTIM says so for the whole
/// chip or the PIIX3 ELCR (<see cref="Elcr"/>) says so for that line.
/// </summary>
internal sealed class Pic8259 : IPortDevice
{
    public const int Lines = 8;
    public const ushort CommandOffset = 0, DataOffset = 1;

    // ICW1 (datasheet, "Initialization Command Words").
    private const byte Icw1Marker = 0x10, Icw1Level = 0x08, Icw1Single = 0x02, Icw1NeedIcw4 = 0x01;

    // ICW4.
    private const byte Icw4AutoEoi = 0x02;
    private const byte VectorBaseMask = 0xF8;

    // OCW3: bit 3 set and bit 4 clear tells it from OCW2.
    private const byte Ocw3Marker = 0x08, Ocw3SetSpecialMask = 0x40, Ocw3SpecialMask = 0x20, Ocw3Poll = 0x04,
        Ocw3ReadRegister = 0x02, Ocw3ReadIsr = 0x01;

    // OCW2 commands (R, SL, EOI in bits 7-5) and the poll word's "interrupt present" bit.
    private const int Ocw2Shift = 5, LevelMask = 7;
    private const int RotateAutoEoiClear = 0, NonSpecificEoi = 1, NoOperation = 2, SpecificEoi = 3,
        RotateAutoEoiSet = 4, RotateNonSpecificEoi = 5, SetPriority = 6, RotateSpecificEoi = 7;
    private const byte PollInterrupt = 0x80;

    private enum InitStep { Ready, Icw2, Icw3, Icw4 }

    private InitStep _step;
    private bool _needIcw4;
    private bool _levelTriggered;
    private bool _autoEoi;
    private bool _rotateOnAutoEoi;
    private bool _specialMask;
    private bool _readIsr;
    private bool _poll;
    private int _lines;
    private int _lowestPriority = Lines - 1;

    /// <summary>Raised when the INT output may have changed (the pair re-evaluates the cascade).</summary>
    public event Action? Changed;

    public int Irr { get; private set; }

    public int Isr { get; private set; }

    public int Imr { get; private set; }

    public int VectorBase { get; private set; }

    /// <summary>ICW3: on the master, the lines with a slave; on a slave, its cascade identity.</summary>
    public int Icw3 { get; private set; }

    public bool Single { get; private set; }

    /// <summary>The PIIX3 ELCR bits for this chip's lines: 1 = level-triggered (<see cref="SetLevelLines"/>).</summary>
    public int LevelLines { get; private set; }

    public bool InitializationDone => _step == InitStep.Ready;

    private bool IsLevel(int bit) => _levelTriggered || (LevelLines & bit) != 0;

    /// <summary>The INT output: an unmasked request of higher priority than everything in service.</summary>
    public bool Interrupt => HighestRequest() >= 0;

    /// <summary>Drives input line IRn. Edge lines latch a rising edge in IRR; level lines request while high.</summary>
    public void SetLine(int line, bool level)
    {
        int bit = 1 << line;
        bool wasHigh = (_lines & bit) != 0;
        if (level)
        {
            _lines |= bit;
            if (IsLevel(bit) || !wasHigh)
            {
                Irr |= bit;
            }
        }
        else
        {
            _lines &= ~bit;

            // A level request that goes away before INTA is withdrawn (a spurious IRQ7 at INTA). An edge
            // stays latched in IRR (QEMU behaves the same; the datasheet asks the line to stay high until INTA).
            if (IsLevel(bit))
            {
                Irr &= ~bit;
            }
        }

        Changed?.Invoke();
    }

    /// <summary>The ELCR changed: a line that is now level-triggered and high requests at once.</summary>
    public void SetLevelLines(int mask)
    {
        LevelLines = mask;
        Irr |= _lines & mask;
        Changed?.Invoke();
    }

    /// <summary>
    /// The INTA sequence: the highest request goes in service (unless auto-EOI) and its line number is
    /// returned; -1 means no request is there any more, and the caller delivers the spurious IRQ7.
    /// </summary>
    public int Acknowledge()
    {
        int line = HighestRequest();
        if (line < 0)
        {
            return -1;
        }

        // An edge request is consumed by INTA; a level request stays while its line is high, so it
        // requests again after the EOI unless the device quieted it.
        int bit = 1 << line;
        if (!IsLevel(bit) || (_lines & bit) == 0)
        {
            Irr &= ~bit;
        }

        if (_autoEoi)
        {
            if (_rotateOnAutoEoi)
            {
                _lowestPriority = line;
            }
        }
        else
        {
            Isr |= bit;
        }

        Changed?.Invoke();
        return line;
    }

    public uint Read(ushort offset, int sizeBytes)
    {
        if (offset == DataOffset)
        {
            return (uint)Imr;
        }

        if (_poll)
        {
            // Poll mode: the read is the INTA, the poll word says whether and which level requested.
            _poll = false;
            int line = Acknowledge();
            return line < 0 ? 0u : PollInterrupt | (uint)line;
        }

        return (uint)(_readIsr ? Isr : Irr);
    }

    public void Write(ushort offset, int sizeBytes, uint value)
    {
        byte b = (byte)value;
        if (offset == CommandOffset)
        {
            if ((b & Icw1Marker) != 0)
            {
                Icw1(b);
            }
            else if ((b & Ocw3Marker) != 0)
            {
                Ocw3(b);
            }
            else
            {
                Ocw2(b);
            }
        }
        else
        {
            switch (_step)
            {
                case InitStep.Icw2:
                    VectorBase = b & VectorBaseMask;
                    _step = Single ? (_needIcw4 ? InitStep.Icw4 : InitStep.Ready) : InitStep.Icw3;
                    break;
                case InitStep.Icw3:
                    Icw3 = b;
                    _step = _needIcw4 ? InitStep.Icw4 : InitStep.Ready;
                    break;
                case InitStep.Icw4:
                    _autoEoi = (b & Icw4AutoEoi) != 0;
                    _step = InitStep.Ready;
                    break;
                default:
                    Imr = b; // OCW1
                    break;
            }
        }

        Changed?.Invoke();
    }

    private void Icw1(byte b)
    {
        // Datasheet: the edge-sense circuit is reset, IMR and ISR cleared, IR7 lowest priority, special
        // mask mode off, status read set to IRR; without IC4 the ICW4 functions are all zero.
        _step = InitStep.Icw2;
        _needIcw4 = (b & Icw1NeedIcw4) != 0;
        Single = (b & Icw1Single) != 0;
        _levelTriggered = (b & Icw1Level) != 0;
        Imr = 0;
        Isr = 0;
        _lowestPriority = Lines - 1;
        _specialMask = false;
        _readIsr = false;
        _poll = false;
        _autoEoi = false;
        _rotateOnAutoEoi = false;

        // A reset edge detector needs a new rising edge; a level line that is high requests again.
        Irr = 0;
        for (int line = 0; line < Lines; line++)
        {
            int bit = 1 << line;
            if ((_lines & bit) != 0 && IsLevel(bit))
            {
                Irr |= bit;
            }
        }
    }

    private void Ocw2(byte b)
    {
        int level = b & LevelMask;
        switch (b >> Ocw2Shift)
        {
            case NonSpecificEoi:
                ClearHighestInService();
                break;
            case RotateNonSpecificEoi:
                int cleared = ClearHighestInService();
                if (cleared >= 0)
                {
                    _lowestPriority = cleared;
                }

                break;
            case SpecificEoi:
                Isr &= ~(1 << level);
                break;
            case RotateSpecificEoi:
                Isr &= ~(1 << level);
                _lowestPriority = level;
                break;
            case SetPriority:
                _lowestPriority = level;
                break;
            case RotateAutoEoiSet:
                _rotateOnAutoEoi = true;
                break;
            case RotateAutoEoiClear:
                _rotateOnAutoEoi = false;
                break;
            case NoOperation:
                break;
        }
    }

    private void Ocw3(byte b)
    {
        if ((b & Ocw3SetSpecialMask) != 0)
        {
            _specialMask = (b & Ocw3SpecialMask) != 0;
        }

        _poll = (b & Ocw3Poll) != 0;
        if ((b & Ocw3ReadRegister) != 0)
        {
            _readIsr = (b & Ocw3ReadIsr) != 0;
        }
    }

    /// <summary>Levels in priority order, highest first: the one after the lowest-priority level.</summary>
    private int LevelAtPriority(int rank) => (_lowestPriority + 1 + rank) & LevelMask;

    private int ClearHighestInService()
    {
        for (int rank = 0; rank < Lines; rank++)
        {
            int line = LevelAtPriority(rank);
            if ((Isr & (1 << line)) != 0)
            {
                Isr &= ~(1 << line);
                return line;
            }
        }

        return -1;
    }

    private int HighestRequest()
    {
        int pending = Irr & ~Imr;
        if (pending == 0)
        {
            return -1;
        }

        // Special mask mode: masked in-service levels no longer inhibit lower priorities.
        int blocking = _specialMask ? Isr & ~Imr : Isr;
        for (int rank = 0; rank < Lines; rank++)
        {
            int bit = 1 << LevelAtPriority(rank);
            if ((blocking & bit) != 0)
            {
                return -1;
            }

            if ((pending & bit) != 0)
            {
                return LevelAtPriority(rank);
            }
        }

        return -1;
    }
}

using ImgTool.Machine.Cpu;

namespace ImgTool.Machine.Devices;

/// <summary>
/// The two cascaded 8259A interrupt controllers of a PC (master 0x20, slave 0xA0 on IRQ2), with the
/// PIIX ELCR (0x4D0/0x4D1) selecting edge or level triggering per IRQ. Enough of the 8259A datasheet
/// for a BIOS and Linux: ICW1-4, OCW1 (mask), OCW2 (EOI, specific EOI), OCW3 (read IRR/ISR).
/// </summary>
internal sealed class Pic8259 : IPortDevice, IInterruptLine
{
    private readonly Chip _master = new();
    private readonly Chip _slave = new();
    private readonly byte[] _elcr = new byte[2];

    public bool Pending => ComputeVector(acknowledge: false) >= 0;

    /// <summary>True when the IRQ (0-15) cannot reach the CPU: masked at its chip, or a slave IRQ with IRQ 2 masked.</summary>
    public bool IsMasked(int irq) =>
        irq < 8 ? (_master.Imr & (1 << irq)) != 0 : (_slave.Imr & (1 << (irq & 7))) != 0 || (_master.Imr & 4) != 0;

    public int Acknowledge()
    {
        int vector = ComputeVector(acknowledge: true);
        return vector >= 0 ? vector : _master.VectorBase + 7; // spurious IRQ7
    }

    /// <summary>Raises or lowers an IRQ line (0-15). Edge-triggered lines latch on the rising edge.</summary>
    public void SetIrq(int irq, bool level)
    {
        var chip = irq < 8 ? _master : _slave;
        int bit = 1 << (irq & 7);
        bool levelTriggered = (_elcr[irq >> 3] & bit) != 0;
        bool wasHigh = (chip.Lines & bit) != 0;
        if (level)
        {
            chip.Lines |= bit;
            if (levelTriggered || !wasHigh)
            {
                chip.Irr |= bit;
            }
        }
        else
        {
            chip.Lines &= ~bit;
            if (levelTriggered)
            {
                chip.Irr &= ~bit;
            }
        }
    }

    private int ComputeVector(bool acknowledge)
    {
        // The slave's output drives master IRQ2.
        int slaveIrq = _slave.HighestRequest();
        if (slaveIrq >= 0)
        {
            _master.Irr |= 1 << 2;
        }
        else if ((_master.Lines & 4) == 0)
        {
            _master.Irr &= ~(1 << 2);
        }

        int irq = _master.HighestRequest();
        if (irq < 0)
        {
            return -1;
        }

        if (!acknowledge)
        {
            return irq;
        }

        _master.Accept(irq, (_elcr[0] & (1 << irq)) != 0);
        if (irq == 2 && slaveIrq >= 0)
        {
            _slave.Accept(slaveIrq, (_elcr[1] & (1 << slaveIrq)) != 0);
            return _slave.VectorBase + slaveIrq;
        }

        return _master.VectorBase + irq;
    }

    public uint Read(ushort port, int sizeBytes)
    {
        switch (port)
        {
            case 0x4D0: return _elcr[0];
            case 0x4D1: return _elcr[1];
        }

        var chip = port >= 0xA0 ? _slave : _master;
        return (port & 1) == 0 ? (uint)(chip.ReadIsr ? chip.Isr : chip.Irr) : (uint)chip.Imr;
    }

    public void Write(ushort port, int sizeBytes, uint value)
    {
        switch (port)
        {
            // IRQ0-2 and 8, 13 are always edge on the PIIX (datasheet 4.1.5.10).
            case 0x4D0: _elcr[0] = (byte)(value & 0xF8); return;
            case 0x4D1: _elcr[1] = (byte)(value & 0xDE); return;
        }

        var chip = port >= 0xA0 ? _slave : _master;
        chip.Write((port & 1) != 0, (byte)value);
    }

    private sealed class Chip
    {
        public int Irr, Isr, Imr = 0xFF, Lines;
        public int VectorBase;
        public bool ReadIsr;
        private int _initStep;
        private bool _needIcw4;
        private bool _autoEoi;

        public int HighestRequest()
        {
            int pending = Irr & ~Imr;
            for (int irq = 0; irq < 8; irq++)
            {
                int bit = 1 << irq;
                if ((Isr & bit) != 0)
                {
                    return -1; // fully nested: a higher-priority IRQ is in service
                }

                if ((pending & bit) != 0)
                {
                    return irq;
                }
            }

            return -1;
        }

        public void Accept(int irq, bool level)
        {
            int bit = 1 << irq;
            if (!level)
            {
                Irr &= ~bit;
            }

            if (!_autoEoi)
            {
                Isr |= bit;
            }
        }

        public void Write(bool dataPort, byte value)
        {
            if (!dataPort)
            {
                if ((value & 0x10) != 0)
                {
                    // ICW1: restart initialization.
                    _initStep = 2;
                    _needIcw4 = (value & 1) != 0;
                    Imr = 0;
                    Isr = 0;
                    Irr = 0;
                    ReadIsr = false;
                }
                else if ((value & 0x08) != 0)
                {
                    // OCW3: select IRR or ISR for reads.
                    if ((value & 2) != 0)
                    {
                        ReadIsr = (value & 1) != 0;
                    }
                }
                else
                {
                    // OCW2: non-specific (0x20) or specific (0x60 | level) EOI.
                    int command = value >> 5;
                    if (command == 1 || command == 5)
                    {
                        for (int irq = 0; irq < 8; irq++)
                        {
                            if ((Isr & (1 << irq)) != 0)
                            {
                                Isr &= ~(1 << irq);
                                break;
                            }
                        }
                    }
                    else if (command == 3 || command == 7)
                    {
                        Isr &= ~(1 << (value & 7));
                    }
                }

                return;
            }

            switch (_initStep)
            {
                case 2:
                    VectorBase = value & 0xF8;
                    _initStep = 3;
                    break;
                case 3:
                    _initStep = _needIcw4 ? 4 : 0;
                    break;
                case 4:
                    _autoEoi = (value & 2) != 0;
                    _initStep = 0;
                    break;
                default:
                    Imr = value;
                    break;
            }
        }
    }
}

using ImgTool.Machine.Cpu;

namespace ImgTool.Machine.Devices;

/// <summary>
/// The two cascaded 8259As of a PC/AT: the master at 0x20 (IRQ 0-7), the slave at 0xA0 (IRQ 8-15)
/// whose INT output drives master line 2. The CPU sees the master's INT and runs the INTA cycle
/// through <see cref="Acknowledge"/>: when the master acknowledges its cascade line the slave gives
/// the vector. A request withdrawn before INTA gives the spurious vector of IRQ7 (master) or IRQ15
/// (slave; the master's IRQ2 is then in service, which is why Linux EOIs the master for it).
/// </summary>
internal sealed class Pic8259Pair : IInterruptLine
{
    public const int CascadeLine = 2, SpuriousLine = 7, IrqCount = 2 * Pic8259.Lines;
    private bool _propagating;

    public Pic8259Pair()
    {
        Master.Changed += PropagateCascade;
        Slave.Changed += PropagateCascade;
    }

    public Pic8259 Master { get; } = new();

    public Pic8259 Slave { get; } = new();

    public bool Pending => Master.Interrupt;

    /// <summary>True when the IRQ (0-15) cannot reach the CPU: masked at its chip, or a slave IRQ with the cascade masked.</summary>
    public bool IsMasked(int irq) =>
        irq < Pic8259.Lines
            ? (Master.Imr & (1 << irq)) != 0
            : (Slave.Imr & (1 << (irq - Pic8259.Lines))) != 0 || (Master.Imr & (1 << CascadeLine)) != 0;

    /// <summary>Raises or lowers IRQ 0-15.</summary>
    public void SetIrq(int irq, bool level)
    {
        if (irq < Pic8259.Lines)
        {
            Master.SetLine(irq, level);
        }
        else
        {
            Slave.SetLine(irq - Pic8259.Lines, level);
        }
    }

    public int Acknowledge()
    {
        int line = Master.Acknowledge();
        if (line < 0)
        {
            return Master.VectorBase + SpuriousLine;
        }

        if (line == CascadeLine && IsCascaded)
        {
            int slaveLine = Slave.Acknowledge();
            return Slave.VectorBase + (slaveLine < 0 ? SpuriousLine : slaveLine);
        }

        return Master.VectorBase + line;
    }

    private bool IsCascaded => !Master.Single && (Master.Icw3 & (1 << CascadeLine)) != 0;

    /// <summary>The slave's INT output is master line 2 (the master latches its rising edge).</summary>
    private void PropagateCascade()
    {
        if (_propagating)
        {
            return;
        }

        _propagating = true;
        try
        {
            Master.SetLine(CascadeLine, Slave.Interrupt);
        }
        finally
        {
            _propagating = false;
        }
    }
}

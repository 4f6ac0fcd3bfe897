using ImgTool.Machine.Pci;
namespace ImgTool.Machine.Devices;

/// <summary>
/// The PIIX3 PCI-to-ISA bridge, function 0 of device 1 (8086:7000; PIIX3 datasheet 2.2): its PIRQ
/// route control registers PIRQRC[A:D] at 0x60-0x63 (2.2.9: bit 7 disables the route, bits 3-0 name
/// the ISA IRQ) steer the four PCI interrupt lines to the PIC. Linux's PIIX router (arch/x86/pci/irq.c,
/// pirq_piix_get/set) reads and writes them as whole bytes, a value below 16 being a route; SeaBIOS
/// programs them at POST. PCI INTx lines are level-triggered and shared, so several devices' lines
/// on one PIRQ are ORed, and the PIC sees a routed IRQ as level once the ELCR (<see cref="Elcr"/>, a
/// PIIX3 register too) marks it so, which Linux (elcr_set_level_irq) and SeaBIOS do.
/// </summary>
internal sealed class Piix3IsaBridge : PciFunction
{
    public const ushort Vendor = 0x8086, Device = 0x7000;
    public const int PirqRouteA = 0x60, PirqCount = 4;
    public const byte RouteDisabled = 0x80;
    private const uint IsaBridgeClass = 0x060100;
    private const ushort QemuSubsystemVendor = 0x1AF4, QemuSubsystem = 0x1100;
    private const byte RouteIrqMask = 0x0F;

    /// <summary>ISA IRQs a PIRQ may be routed to (2.2.9: 0-2, 8 and 13 are reserved).</summary>
    private const int RoutableIrqs = 0b1101_1110_1111_1000;

    private readonly Pic8259Pair _pic;
    private readonly List<(int Pirq, bool Level)> _sources = [];
    private int _drivenIrqs;

    public Piix3IsaBridge(Pic8259Pair pic)
        : base(Vendor, Device, IsaBridgeClass, 0x00, QemuSubsystemVendor, QemuSubsystem)
    {
        _pic = pic;
        Elcr = new Elcr(pic);
        MultiFunction = true; // IDE and USB functions would follow
        for (int pirq = 0; pirq < PirqCount; pirq++)
        {
            Config[PirqRouteA + pirq] = RouteDisabled; // the reset value: not routed until the BIOS programs it
        }
    }

    /// <summary>The edge/level control registers at 0x4D0/0x4D1.</summary>
    public Elcr Elcr { get; }

    /// <summary>
    /// The PIRQ a PCI device's INTx pin reaches on this board: (slot - 1 + pin - 1) mod 4 with INTA# = pin 1,
    /// the rotation QEMU's i440FX board wires (pci_slot_get_pirq) and SeaBIOS's $PIR and MP tables describe
    /// (piix_pci_slot_get_irq): slot 2 INTA# is PIRQB, which SeaBIOS routes to IRQ 10.
    /// </summary>
    public static int PirqOf(int slot, int pin) => (slot - 1 + pin - 1) & (PirqCount - 1);

    /// <summary>The ISA IRQ a PIRQ is routed to now, or -1.</summary>
    public int RoutedIrq(int pirq)
    {
        int route = Config[PirqRouteA + pirq];
        int irq = route & RouteIrqMask;
        return (route & RouteDisabled) == 0 && (RoutableIrqs & (1 << irq)) != 0 ? irq : -1;
    }

    /// <summary>A PCI function's INTx output (pin 1 = INTA#), as a setter its device calls with the line's level.</summary>
    public Action<bool> IntxLine(int slot, int pin)
    {
        int source = _sources.Count;
        _sources.Add((PirqOf(slot, pin), false));
        return level =>
        {
            _sources[source] = (_sources[source].Pirq, level);
            Drive();
        };
    }

    public override void WriteConfig(int offset, int sizeBytes, uint value)
    {
        base.WriteConfig(offset, sizeBytes, value);
        if (offset < PirqRouteA + PirqCount && offset + sizeBytes > PirqRouteA)
        {
            Drive();
        }
    }

    /// <summary>Drives each ISA IRQ with the OR of the PIRQ lines routed to it; a re-routed IRQ is released.</summary>
    private void Drive()
    {
        int asserted = 0;
        foreach (var (pirq, level) in _sources)
        {
            int irq = RoutedIrq(pirq);
            if (level && irq >= 0)
            {
                asserted |= 1 << irq;
            }
        }

        int changed = asserted ^ _drivenIrqs;
        _drivenIrqs = asserted;
        for (int irq = 0; irq < Pic8259Pair.IrqCount; irq++)
        {
            if ((changed & (1 << irq)) != 0)
            {
                _pic.SetIrq(irq, (asserted & (1 << irq)) != 0);
            }
        }
    }
}

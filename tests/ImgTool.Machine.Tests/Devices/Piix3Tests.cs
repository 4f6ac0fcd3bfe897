using ImgTool.Machine.Pci;
using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;

namespace ImgTool.Machine.Tests.Devices;

/// <summary>
/// The PIIX3 ISA bridge at PCI 00:01.0 through configuration mechanism #1 (0xCF8/0xCFC), its PIRQ
/// routing to the PIC as Linux's PIIX router programs it, and its reset control register at 0xCF9.
/// </summary>
public sealed class Piix3Tests
{
    private const ushort ConfigAddress = 0xCF8, ConfigData = 0xCFC, ElcrPort = 0x4D0;
    private const uint EnableBit = 0x8000_0000;
    private const int IsaDevice = 1;

    private readonly IoBus _bus = new();
    private readonly Pic8259Pair _pic = new();
    private readonly Piix3IsaBridge _isa;
    private readonly List<ResetSource> _resets = [];
    private readonly ResetControlRegister _rcr;

    public Piix3Tests()
    {
        _isa = new Piix3IsaBridge(_pic);
        var pci = new PciHost();
        pci.Add(IsaDevice, 0, _isa);
        _bus.Map(ConfigAddress, 8, pci);
        _rcr = new ResetControlRegister(_resets.Add);
        _bus.Map(ResetControlRegister.Port, 1, _rcr);
        _bus.Map(ElcrPort, Elcr.PortCount, _isa.Elcr);
        _bus.Map(ApmPorts.FirstPort, ApmPorts.PortCount, new ApmPorts());

        // The PIC as Linux programs it, all lines unmasked.
        _bus.Map(0x20, 2, _pic.Master);
        _bus.Map(0xA0, 2, _pic.Slave);
        foreach (var (command, data, vector, cascade) in new[] { (0x20, 0x21, 0x30, 4), (0xA0, 0xA1, 0x38, 2) })
        {
            _bus.Out((ushort)command, 1, 0x11);
            _bus.Out((ushort)data, 1, (uint)vector);
            _bus.Out((ushort)data, 1, (uint)cascade);
            _bus.Out((ushort)data, 1, 0x01);
            _bus.Out((ushort)data, 1, 0x00);
        }
    }

    private uint ConfigRead(int register, int sizeBytes)
    {
        _bus.Out(ConfigAddress, 4, EnableBit | (IsaDevice << 11) | (uint)(register & 0xFC));
        return _bus.In((ushort)(ConfigData + (register & 3)), sizeBytes);
    }

    private void ConfigWrite(int register, int sizeBytes, uint value)
    {
        _bus.Out(ConfigAddress, 4, EnableBit | (IsaDevice << 11) | (uint)(register & 0xFC));
        _bus.Out((ushort)(ConfigData + (register & 3)), sizeBytes, value);
    }

    [Fact]
    public void The_bridge_identifies_itself_and_pirq_routes_start_disabled()
    {
        Assert.Equal(0x7000_8086u, ConfigRead(0x00, 4));
        Assert.Equal(0x0601u, ConfigRead(0x0A, 2)); // PCI-to-ISA bridge
        Assert.Equal(0x80u, ConfigRead(0x0E, 1)); // multi-function
        for (int pirq = 0; pirq < Piix3IsaBridge.PirqCount; pirq++)
        {
            Assert.Equal(Piix3IsaBridge.RouteDisabled, (byte)ConfigRead(Piix3IsaBridge.PirqRouteA + pirq, 1));
            Assert.Equal(-1, _isa.RoutedIrq(pirq));
        }
    }

    [Fact]
    public void A_device_intx_reaches_the_irq_its_pirq_is_routed_to_as_a_level_line()
    {
        Action<bool> intA = _isa.IntxLine(slot: 3, pin: 1); // slot 3 INTA# -> PIRQC
        Assert.Equal(2, Piix3IsaBridge.PirqOf(3, 1));
        Assert.Equal(1, Piix3IsaBridge.PirqOf(2, 1)); // the disk's slot 2 INTA# -> PIRQB (QEMU, SeaBIOS's $PIR)
        intA(true);
        Assert.False(_pic.Pending); // not routed yet

        // pirq_piix_set: a byte write of the IRQ number; elcr_set_level_irq marks it level.
        ConfigWrite(Piix3IsaBridge.PirqRouteA + 2, 1, 11);
        Assert.Equal(11u, ConfigRead(Piix3IsaBridge.PirqRouteA + 2, 1)); // pirq_piix_get: below 16 is a route
        _bus.Out(ElcrPort + 1, 1, 1 << (11 - 8));
        Assert.True(_pic.Pending);
        Assert.Equal(0x38 + 3, _pic.Acknowledge());
        _bus.Out(0xA0, 1, 0x63);
        _bus.Out(0x20, 1, 0x62);
        Assert.True(_pic.Pending); // still asserted: level-triggered lines request again after EOI
        Assert.Equal(0x38 + 3, _pic.Acknowledge());
        intA(false);
        _bus.Out(0xA0, 1, 0x63);
        _bus.Out(0x20, 1, 0x62);
        Assert.False(_pic.Pending);
    }

    [Fact]
    public void Shared_lines_on_one_pirq_are_ored_and_rerouting_releases_the_old_irq()
    {
        ConfigWrite(Piix3IsaBridge.PirqRouteA, 4, 0x0B0B0A0A); // A, B -> 10; C, D -> 11 (SeaBIOS's defaults)
        _bus.Out(ElcrPort + 1, 1, (1 << 2) | (1 << 3));
        Action<bool> first = _isa.IntxLine(slot: 4, pin: 1);  // PIRQD
        Action<bool> second = _isa.IntxLine(slot: 3, pin: 2); // PIRQD too
        first(true);
        second(true);
        first(false);
        Assert.Equal(0x38 + 3, _pic.Acknowledge()); // IRQ 11 still held by the second device
        second(false);
        _bus.Out(0xA0, 1, 0x63);
        _bus.Out(0x20, 1, 0x62);
        Assert.False(_pic.Pending);

        second(true);
        ConfigWrite(Piix3IsaBridge.PirqRouteA + 3, 1, 5); // PIRQD -> IRQ 5 (edge: not in the ELCR)
        Assert.Equal(5, _isa.RoutedIrq(3));
        Assert.True(_isa.RoutedIrq(3) == 5 && !_pic.IsMasked(11));

        // IRQ 11's request went with the route; the master had latched the cascade's edge, so the next
        // INTA finds nothing on the slave: the spurious IRQ 15 (QEMU's i8259 does the same), then IRQ 5.
        Assert.Equal(0x38 + 7, _pic.Acknowledge());
        _bus.Out(0x20, 1, 0x62); // Linux EOIs the master's cascade line for a spurious IRQ 15
        Assert.Equal(0x30 + 5, _pic.Acknowledge());
        _bus.Out(0x20, 1, 0x65);
        Assert.False(_pic.Pending);
    }

    [Fact]
    public void Reserved_irq_numbers_and_bit_7_do_not_route()
    {
        ConfigWrite(Piix3IsaBridge.PirqRouteA, 1, 0x8B);
        Assert.Equal(-1, _isa.RoutedIrq(0));
        ConfigWrite(Piix3IsaBridge.PirqRouteA, 1, 2);
        Assert.Equal(-1, _isa.RoutedIrq(0));
        ConfigWrite(Piix3IsaBridge.PirqRouteA, 1, 13);
        Assert.Equal(-1, _isa.RoutedIrq(0));
        ConfigWrite(Piix3IsaBridge.PirqRouteA, 1, 9);
        Assert.Equal(9, _isa.RoutedIrq(0));
    }

    [Fact]
    public void Reset_control_register_resets_on_bit_2_rising_as_linux_reboot_pci_writes_it()
    {
        _bus.Out(ResetControlRegister.Port, 1, ResetControlRegister.SystemReset); // 0x02: select hard reset
        Assert.Empty(_resets);
        _bus.Out(ResetControlRegister.Port, 1, ResetControlRegister.SystemReset | ResetControlRegister.ResetCpu); // 0x06
        Assert.Equal([ResetSource.ResetControlRegister], _resets);
        Assert.True(_rcr.LastResetHard);
    }

    [Fact]
    public void The_configuration_address_dword_still_works_around_the_reset_register()
    {
        _bus.Out(ConfigAddress, 4, EnableBit | (IsaDevice << 11));
        Assert.Equal(EnableBit | (IsaDevice << 11), _bus.In(ConfigAddress, 4));
        Assert.Empty(_resets);
    }

    [Fact]
    public void Apm_ports_hold_their_bytes()
    {
        _bus.Out(ApmPorts.FirstPort, 1, 0x12);
        _bus.Out(ApmPorts.FirstPort + 1, 1, 0x34);
        Assert.Equal(0x12u, _bus.In(ApmPorts.FirstPort, 1));
        Assert.Equal(0x34u, _bus.In(ApmPorts.FirstPort + 1, 1));
    }
}

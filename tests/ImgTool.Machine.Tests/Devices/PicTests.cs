using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;

namespace ImgTool.Machine.Tests.Devices;

/// <summary>The 8259A pair and the ELCR through the bus at 0x20/0xA0/0x4D0, initialized as Linux's init_8259A does.</summary>
public sealed class PicTests
{
    private const ushort MasterCommand = 0x20, MasterData = 0x21, SlaveCommand = 0xA0, SlaveData = 0xA1, Elcr1 = 0x4D0, Elcr2 = 0x4D1;
    private const int MasterBase = 0x30, SlaveBase = 0x38;
    private const byte ReadIrr = 0x0A, ReadIsr = 0x0B, NonSpecificEoi = 0x20, SpecificEoi = 0x60;

    private readonly IoBus _bus = new();
    private readonly Pic8259Pair _pic = new();

    public PicTests()
    {
        _bus.Map(MasterCommand, 2, _pic.Master);
        _bus.Map(SlaveCommand, 2, _pic.Slave);
        _bus.Map(Elcr1, Elcr.PortCount, new Elcr(_pic));
        Initialize(autoEoi: false);
    }

    private void Out(ushort port, byte value) => _bus.Out(port, 1, value);

    private byte In(ushort port) => (byte)_bus.In(port, 1);

    /// <summary>arch/x86/kernel/i8259.c init_8259A: ICW1 0x11, vector bases 0x30/0x38, cascade on IR2, 8086 mode.</summary>
    private void Initialize(bool autoEoi, byte icw1 = 0x11)
    {
        Out(MasterCommand, icw1);
        Out(MasterData, MasterBase);
        Out(MasterData, 1 << 2);
        Out(MasterData, (byte)(autoEoi ? 0x03 : 0x01));
        Out(SlaveCommand, icw1);
        Out(SlaveData, SlaveBase);
        Out(SlaveData, 2);
        Out(SlaveData, (byte)(autoEoi ? 0x03 : 0x01));
        Out(MasterData, 0x00);
        Out(SlaveData, 0x00);
    }

    private byte MasterIsr()
    {
        Out(MasterCommand, ReadIsr);
        byte isr = In(MasterCommand);
        Out(MasterCommand, ReadIrr);
        return isr;
    }

    private byte SlaveIsr()
    {
        Out(SlaveCommand, ReadIsr);
        byte isr = In(SlaveCommand);
        Out(SlaveCommand, ReadIrr);
        return isr;
    }

    private void Pulse(int irq)
    {
        _pic.SetIrq(irq, true);
        _pic.SetIrq(irq, false);
    }

    [Fact]
    public void An_edge_is_latched_in_irr_and_acknowledged_into_isr_with_the_programmed_vector()
    {
        Pulse(3);
        Assert.Equal(1 << 3, In(MasterCommand)); // IRR (the default read after init)
        Assert.True(_pic.Pending);
        Assert.Equal(MasterBase + 3, _pic.Acknowledge());
        Assert.Equal(1 << 3, MasterIsr());
        Assert.False(_pic.Pending);
        Out(MasterCommand, NonSpecificEoi);
        Assert.Equal(0, MasterIsr());
    }

    [Fact]
    public void Masked_lines_stay_in_irr_without_interrupting()
    {
        Out(MasterData, 1 << 5);
        Pulse(5);
        Assert.False(_pic.Pending);
        Assert.Equal(1 << 5, In(MasterCommand));
        Assert.Equal(1 << 5, In(MasterData));
        Out(MasterData, 0);
        Assert.Equal(MasterBase + 5, _pic.Acknowledge());
    }

    [Fact]
    public void Fully_nested_a_lower_priority_waits_for_the_eoi_a_higher_one_nests()
    {
        Pulse(4);
        Assert.Equal(MasterBase + 4, _pic.Acknowledge());
        Pulse(6);
        Assert.False(_pic.Pending); // IRQ 6 is below IRQ 4 in service
        Pulse(1);
        Assert.Equal(MasterBase + 1, _pic.Acknowledge()); // IRQ 1 nests
        Assert.Equal((1 << 4) | (1 << 1), MasterIsr());

        // Linux's i8259 driver EOIs by number: specific EOI clears exactly that level.
        Out(MasterCommand, SpecificEoi | 4);
        Assert.Equal(1 << 1, MasterIsr());
        Assert.False(_pic.Pending); // IRQ 1 still blocks IRQ 6
        Out(MasterCommand, SpecificEoi | 1);
        Assert.Equal(MasterBase + 6, _pic.Acknowledge());
    }

    [Fact]
    public void A_slave_irq_is_delivered_through_the_cascade_on_irq2()
    {
        Pulse(12);
        Assert.True(_pic.Pending);
        Assert.Equal(SlaveBase + 4, _pic.Acknowledge());
        Assert.Equal(1 << 2, MasterIsr());
        Assert.Equal(1 << 4, SlaveIsr());
        Out(SlaveCommand, SpecificEoi | 4);
        Out(MasterCommand, SpecificEoi | 2);
        Assert.Equal(0, MasterIsr());
        Assert.Equal(0, SlaveIsr());
        Assert.False(_pic.Pending);
    }

    [Fact]
    public void Masking_irq2_masks_the_whole_slave()
    {
        Out(MasterData, 1 << 2);
        Pulse(9);
        Assert.False(_pic.Pending);
        Assert.True(_pic.IsMasked(9));
        Out(MasterData, 0);
        Assert.Equal(SlaveBase + 1, _pic.Acknowledge());
    }

    [Fact]
    public void A_level_request_withdrawn_before_inta_is_the_spurious_irq7()
    {
        Out(Elcr1, 1 << 5);
        _pic.SetIrq(5, true);
        Assert.True(_pic.Pending);
        _pic.SetIrq(5, false);
        Assert.Equal(MasterBase + 7, _pic.Acknowledge());
        Assert.Equal(0, MasterIsr()); // a spurious IRQ7 is not in service: no EOI is due
    }

    [Fact]
    public void A_slave_request_withdrawn_before_inta_is_the_spurious_irq15_with_irq2_in_service()
    {
        Out(Elcr2, 1 << (10 - 8));
        _pic.SetIrq(10, true);
        Assert.True(_pic.Pending);
        _pic.SetIrq(10, false);
        Assert.Equal(SlaveBase + 7, _pic.Acknowledge());
        Assert.Equal(1 << 2, MasterIsr()); // the master did acknowledge its cascade line
        Assert.Equal(0, SlaveIsr());
    }

    [Fact]
    public void A_level_line_still_asserted_after_eoi_requests_again_an_edge_line_does_not()
    {
        Out(Elcr2, 1 << (11 - 8));
        _pic.SetIrq(11, true);
        Assert.Equal(SlaveBase + 3, _pic.Acknowledge());
        Out(SlaveCommand, SpecificEoi | 3);
        Out(MasterCommand, SpecificEoi | 2);
        Assert.True(_pic.Pending);
        Assert.Equal(SlaveBase + 3, _pic.Acknowledge());
        _pic.SetIrq(11, false); // the handler quiets the device before the EOI
        Out(SlaveCommand, SpecificEoi | 3);
        Out(MasterCommand, SpecificEoi | 2);
        Assert.False(_pic.Pending);

        _pic.SetIrq(3, true); // edge: IRQ 3 is not in the ELCR
        Assert.Equal(MasterBase + 3, _pic.Acknowledge());
        Out(MasterCommand, NonSpecificEoi);
        Assert.False(_pic.Pending);
    }

    [Fact]
    public void Elcr_keeps_irq_0_1_2_8_and_13_edge_triggered()
    {
        _bus.Out(Elcr1, 2, 0xFFFF);
        Assert.Equal(0xF8, In(Elcr1));
        Assert.Equal(0xDE, In(Elcr2));
    }

    [Fact]
    public void Icw1_ltim_makes_every_line_level_triggered()
    {
        Initialize(autoEoi: false, icw1: 0x19);
        _pic.SetIrq(6, true);
        Assert.Equal(MasterBase + 6, _pic.Acknowledge());
        Out(MasterCommand, NonSpecificEoi);
        Assert.Equal(MasterBase + 6, _pic.Acknowledge());
    }

    [Fact]
    public void Auto_eoi_leaves_nothing_in_service()
    {
        Initialize(autoEoi: true);
        Pulse(4);
        Assert.Equal(MasterBase + 4, _pic.Acknowledge());
        Assert.Equal(0, MasterIsr());
        Pulse(6);
        Assert.Equal(MasterBase + 6, _pic.Acknowledge()); // nothing blocks it
    }

    [Fact]
    public void Poll_mode_returns_the_highest_level_and_acknowledges_it()
    {
        Pulse(5);
        Out(MasterCommand, 0x0C); // OCW3: poll
        Assert.Equal(0x80 | 5, In(MasterCommand));
        Assert.Equal(1 << 5, MasterIsr());
        Out(MasterCommand, NonSpecificEoi);
        Out(MasterCommand, 0x0C);
        Assert.Equal(0, In(MasterCommand)); // nothing requested
    }

    [Fact]
    public void Set_priority_and_rotation_change_which_level_wins()
    {
        Out(MasterCommand, 0xC0 | 3); // set priority: IRQ 3 lowest, so IRQ 4 highest
        Pulse(1);
        Pulse(5);
        Assert.Equal(MasterBase + 5, _pic.Acknowledge());
        Out(MasterCommand, 0xA0); // rotate on non-specific EOI: IRQ 5 becomes lowest
        Assert.Equal(MasterBase + 1, _pic.Acknowledge());
        Out(MasterCommand, 0xE0 | 1); // rotate on specific EOI for IRQ 1
        Pulse(0);
        Pulse(6);
        Assert.Equal(MasterBase + 6, _pic.Acknowledge()); // IRQ 1 lowest: 2, 3, ..., 6 come before 0
    }

    [Fact]
    public void Special_mask_mode_lets_a_lower_level_in_while_a_masked_one_is_in_service()
    {
        Pulse(3);
        Assert.Equal(MasterBase + 3, _pic.Acknowledge());
        Out(MasterData, 1 << 3);
        Pulse(5);
        Assert.False(_pic.Pending); // normal mode: IRQ 3 in service blocks IRQ 5
        Out(MasterCommand, 0x68); // OCW3: set special mask mode
        Assert.Equal(MasterBase + 5, _pic.Acknowledge());
        Out(MasterCommand, 0x48); // reset special mask mode
        Assert.Equal((1 << 3) | (1 << 5), MasterIsr());
    }

    [Fact]
    public void Icw1_clears_in_service_and_masks()
    {
        Pulse(4);
        _pic.Acknowledge();
        Out(MasterData, 0xFF);
        Initialize(autoEoi: false);
        Assert.Equal(0, MasterIsr());
        Assert.Equal(0, In(MasterData));
    }
}

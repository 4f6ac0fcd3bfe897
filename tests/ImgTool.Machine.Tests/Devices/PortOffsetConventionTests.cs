using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Tests.Devices;

/// <summary>The bus convention every device relies on: handlers see offsets within the range they were mapped at.</summary>
public sealed class PortOffsetConventionTests
{
    private sealed class Recorder : IPortDevice
    {
        public List<(ushort Offset, int Size, uint? Value)> Accesses { get; } = [];

        public uint Read(ushort offset, int sizeBytes)
        {
            Accesses.Add((offset, sizeBytes, null));
            return offset;
        }

        public void Write(ushort offset, int sizeBytes, uint value) => Accesses.Add((offset, sizeBytes, value));
    }

    [Fact]
    public void The_same_device_mapped_at_two_bases_sees_the_same_offsets()
    {
        var bus = new IoBus();
        var com1 = new Recorder();
        var com2 = new Recorder();
        bus.Map(0x3F8, 8, com1);
        bus.Map(0x2F8, 8, com2);
        bus.Out(0x3FB, 1, 0x83);
        bus.Out(0x2FB, 1, 0x83);
        Assert.Equal(5u, bus.In(0x3FD, 1));
        Assert.Equal(5u, bus.In(0x2FD, 1));
        Assert.Equal(com1.Accesses, com2.Accesses);
        Assert.Equal([(3, 1, 0x83u), (5, 1, null)], com1.Accesses);
    }

    [Fact]
    public void A_later_mapping_takes_over_ports_inside_an_earlier_range_with_its_own_base()
    {
        var bus = new IoBus();
        var pci = new Recorder();
        var reset = new Recorder();
        bus.Map(0xCF8, 8, pci);
        bus.Map(0xCF9, 1, reset);
        bus.Out(0xCF8, 4, 0x8000_0000);
        bus.Out(0xCF9, 1, 0x06);
        Assert.Equal(6u, bus.In(0xCFE, 1));
        Assert.Equal([(0, 4, 0x8000_0000u), (6, 1, null)], pci.Accesses);
        Assert.Equal([(0, 1, 0x06u)], reset.Accesses);
    }

    [Fact]
    public void Unmapped_ports_float_high_and_are_counted()
    {
        var bus = new IoBus();
        var device = new Recorder();
        bus.Map(0x100, 4, device);
        bus.Unmap(0x100, 4);
        Assert.Equal(0xFFu, bus.In(0x102, 1));
        Assert.Empty(device.Accesses);
        Assert.Contains(bus.UnmappedPorts, access => access.Port == 0x102 && !access.Write && access.Count == 1);
    }
}

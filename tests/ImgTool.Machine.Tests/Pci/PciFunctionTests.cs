using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;
using ImgTool.Machine.Memory;
using ImgTool.Machine.Pci;
using ImgTool.Machine.Tests.Platform;
using ImgTool.Machine.Tests.Virtio;
using ImgTool.Machine.Virtio;

namespace ImgTool.Machine.Tests.Pci;

/// <summary>Configuration space as the BIOS and Linux probe it (PCI Local Bus spec 3.0, 6.1-6.7).</summary>
public sealed class PciFunctionTests
{
    private const uint RamBytes = 16u << 20;
    private const ushort IoBase = 0xC040;
    private const uint MmioBase = 0xFE000000;

    private readonly PhysicalMemory _memory = new(RamBytes);
    private readonly IoBus _io = new();

    private VirtioBlkPci NewDevice(VirtioPciMode mode = VirtioPciMode.Transitional) =>
        new(_memory, _io, new MemoryDisk(new byte[1 << 20]), mode);

    private static uint SizeProbe(PciFunction function, int bar)
    {
        int at = PciFunction.Bar0 + bar * PciFunction.BarBytes;
        uint saved = function.ReadConfig(at, 4);
        function.WriteConfig(at, 4, 0xFFFFFFFF);
        uint mask = function.ReadConfig(at, 4);
        function.WriteConfig(at, 4, saved);
        return mask;
    }

    [Fact]
    public void Io_bar_reads_back_its_size_mask_and_io_indicator()
    {
        var device = NewDevice();
        uint probe = SizeProbe(device, VirtioBlkPci.LegacyBar);
        Assert.Equal(1u, probe & 1); // I/O space indicator
        uint size = ~(probe & ~3u) + 1;
        Assert.Equal(0x40u, size);
    }

    [Fact]
    public void Memory_bar_reads_back_its_size_mask_as_a_32_bit_non_prefetchable_bar()
    {
        var device = NewDevice();
        uint probe = SizeProbe(device, VirtioBlkPci.ModernBar);
        Assert.Equal(0u, probe & 0xF); // memory, 32-bit, not prefetchable
        Assert.Equal(VirtioModernTransport.BarSizeBytes, ~(probe & ~0xFu) + 1);
    }

    [Fact]
    public void Bars_that_do_not_exist_read_zero_even_after_all_ones()
    {
        var device = NewDevice(VirtioPciMode.LegacyOnly);
        for (int bar = 1; bar < PciFunction.BarCount; bar++)
        {
            Assert.Equal(0u, SizeProbe(device, bar));
        }

        device.WriteConfig(PciFunction.ExpansionRomBar, 4, 0xFFFFFFFF);
        Assert.Equal(0u, device.ReadConfig(PciFunction.ExpansionRomBar, 4));
    }

    [Fact]
    public void Io_bar_decodes_only_while_the_command_register_enables_io_space()
    {
        var device = NewDevice(VirtioPciMode.LegacyOnly);
        device.WriteConfig(PciFunction.Bar0, 4, IoBase);
        Assert.Equal(0xFFFFFFFFu, _io.In(IoBase, 4)); // assigned, not enabled: floats

        device.WriteConfig(PciFunction.Command, 2, PciFunction.CommandIoSpace);
        Assert.Equal((uint)device.Device.OfferedFeatures, _io.In(IoBase + VirtioLegacyTransport.DeviceFeatures, 4));

        device.WriteConfig(PciFunction.Command, 2, 0);
        Assert.Equal(0xFFFFFFFFu, _io.In(IoBase, 4));
    }

    [Fact]
    public void Moving_an_enabled_bar_unmaps_the_old_window_and_maps_the_new_one()
    {
        var device = NewDevice();
        device.WriteConfig(PciFunction.Bar0 + 4 * VirtioBlkPci.ModernBar, 4, MmioBase);
        device.WriteConfig(PciFunction.Command, 2, PciFunction.CommandMemorySpace);
        uint numQueues = MmioBase + VirtioModernTransport.CommonOffset + VirtioModernTransport.NumQueues;
        Assert.Equal(1u, _memory.Read16(numQueues));

        const uint moved = 0xFD000000;
        device.WriteConfig(PciFunction.Bar0 + 4 * VirtioBlkPci.ModernBar, 4, moved);
        Assert.Equal(0xFFFFu, _memory.Read16(numQueues));
        Assert.Equal(1u, _memory.Read16(moved + VirtioModernTransport.NumQueues));
        Assert.Equal(moved, device.GetBar(VirtioBlkPci.ModernBar)!.MappedAddress);
    }

    [Fact]
    public void A_sizing_probe_with_decoding_on_does_not_map_the_bar_at_the_top_of_memory()
    {
        var device = NewDevice();
        device.WriteConfig(PciFunction.Command, 2, PciFunction.CommandMemorySpace | PciFunction.CommandIoSpace);
        device.WriteConfig(PciFunction.Bar0 + 4 * VirtioBlkPci.ModernBar, 4, 0xFFFFFFFF);
        Assert.Null(device.GetBar(VirtioBlkPci.ModernBar)!.MappedAddress);
        device.WriteConfig(PciFunction.Bar0 + 4 * VirtioBlkPci.ModernBar, 4, 0x1000); // inside RAM
        Assert.Null(device.GetBar(VirtioBlkPci.ModernBar)!.MappedAddress);
    }

    [Fact]
    public void Byte_writes_to_a_bar_keep_the_hard_wired_bits()
    {
        var device = NewDevice();
        device.WriteConfig(PciFunction.Bar0, 1, 0xFF);
        Assert.Equal(0xC1u, device.ReadConfig(PciFunction.Bar0, 1)); // 64-byte I/O BAR: bits 5:1 read zero
    }

    [Fact]
    public void Capability_list_walk_as_linux_does_finds_the_four_virtio_structures()
    {
        var device = NewDevice();
        Assert.NotEqual(0u, device.ReadConfig(PciFunction.Status, 2) & PciFunction.StatusCapabilityList);

        // pci_find_capability: pointer at 0x34, low two bits masked, at most 48 hops.
        var found = new List<(byte Type, byte Bar, uint Offset, uint Length)>();
        int position = (int)device.ReadConfig(PciFunction.CapabilitiesPointer, 1) & ~3;
        for (int ttl = 48; position >= PciFunction.FirstCapabilityOffset && ttl > 0; ttl--)
        {
            Assert.Equal(0, position % 4);
            byte id = (byte)device.ReadConfig(position, 1);
            if (id == VirtioPciCapability.VendorSpecificId)
            {
                found.Add((
                    (byte)device.ReadConfig(position + VirtioPciCapability.CfgType, 1),
                    (byte)device.ReadConfig(position + VirtioPciCapability.Bar, 1),
                    device.ReadConfig(position + VirtioPciCapability.Offset, 4),
                    device.ReadConfig(position + VirtioPciCapability.Length, 4)));
                if (found[^1].Type == VirtioPciCapability.NotifyCfg)
                {
                    Assert.Equal(VirtioModernTransport.NotifyOffMultiplier, device.ReadConfig(position + VirtioPciCapability.NotifyOffMultiplier, 4));
                    Assert.Equal((uint)VirtioPciCapability.NotifyCapBytes, device.ReadConfig(position + VirtioPciCapability.CapLen, 1));
                }
            }

            position = (int)device.ReadConfig(position + 1, 1) & ~3;
        }

        Assert.Equal(
            [VirtioPciCapability.CommonCfg, VirtioPciCapability.IsrCfg, VirtioPciCapability.DeviceCfg, VirtioPciCapability.NotifyCfg],
            found.Select(c => c.Type).ToArray());
        Assert.All(found, c => Assert.Equal(VirtioBlkPci.ModernBar, c.Bar));
        Assert.All(found, c => Assert.True(c.Offset + c.Length <= VirtioModernTransport.BarSizeBytes));
    }

    [Fact]
    public void Capabilities_are_read_only_and_a_legacy_only_device_has_none()
    {
        var device = NewDevice();
        int first = (int)device.ReadConfig(PciFunction.CapabilitiesPointer, 1);
        device.WriteConfig(first, 4, 0);
        Assert.Equal(VirtioPciCapability.VendorSpecificId, (byte)device.ReadConfig(first, 1));

        var legacy = NewDevice(VirtioPciMode.LegacyOnly);
        Assert.Equal(0u, legacy.ReadConfig(PciFunction.Status, 2) & PciFunction.StatusCapabilityList);
        Assert.Equal(0u, legacy.ReadConfig(PciFunction.CapabilitiesPointer, 1));
    }

    [Fact]
    public void Identity_follows_the_interface_mode()
    {
        var transitional = NewDevice();
        Assert.Equal(0x1001u, transitional.ReadConfig(PciFunction.DeviceId, 2));
        Assert.Equal(2u, transitional.ReadConfig(PciFunction.SubsystemId, 2));
        var modern = NewDevice(VirtioPciMode.ModernOnly);
        Assert.Equal(0x1042u, modern.ReadConfig(PciFunction.DeviceId, 2));
        Assert.Equal(1u, modern.ReadConfig(PciFunction.RevisionId, 1));
        Assert.Null(modern.GetBar(VirtioBlkPci.LegacyBar));
        modern.WriteConfig(PciFunction.DeviceId, 2, 0x1234);
        Assert.Equal(0x1042u, modern.ReadConfig(PciFunction.DeviceId, 2));
    }

    [Fact]
    public void Interrupt_line_is_writable_and_pin_is_read_only()
    {
        var device = NewDevice();
        device.WriteConfig(PciFunction.InterruptLine, 2, 0x030B);
        Assert.Equal(0x0Bu, device.ReadConfig(PciFunction.InterruptLine, 1));
        Assert.Equal(PciFunction.InterruptPinA, (byte)device.ReadConfig(PciFunction.InterruptPin, 1));
    }

    [Fact]
    public void Interrupt_disable_masks_intx_but_status_still_shows_it()
    {
        var device = NewDevice(VirtioPciMode.LegacyOnly);
        bool line = false;
        device.InterruptRouting = level => line = level;
        var driver = VirtioTestDriver.Legacy(device, _memory, _io, IoBase);
        driver.Initialize(features: 0);
        driver.SubmitRead(sector: 0, sectors: 1, out _);
        Assert.True(line);
        Assert.NotEqual(0u, device.ReadConfig(PciFunction.Status, 2) & PciFunction.StatusInterrupt);

        device.WriteConfig(PciFunction.Command, 2, PciFunction.CommandIoSpace | PciFunction.CommandInterruptDisable);
        Assert.False(line);
        Assert.NotEqual(0u, device.ReadConfig(PciFunction.Status, 2) & PciFunction.StatusInterrupt);

        device.WriteConfig(PciFunction.Command, 2, PciFunction.CommandIoSpace);
        Assert.True(line);
        Assert.Equal(VirtioDevice.IsrQueue, (byte)_io.In(IoBase + VirtioLegacyTransport.IsrStatus, 1));
        Assert.False(line);
        Assert.Equal(0u, device.ReadConfig(PciFunction.Status, 2) & PciFunction.StatusInterrupt);
    }

    [Fact]
    public void Host_reads_absent_functions_as_all_ones_and_reaches_present_ones()
    {
        var host = new PciHost();
        var device = NewDevice();
        host.Add(2, 0, device);
        device.MultiFunction = true;
        const uint enable = 0x8000_0000;
        host.Write(0, 4, enable | (2u << 11));
        Assert.Equal(0x10011AF4u, host.Read(PciHost.ConfigDataPort - PciHost.ConfigAddressPort, 4));
        Assert.Equal(0x1001u, host.Read(PciHost.ConfigDataPort - PciHost.ConfigAddressPort + 2, 2));
        host.Write(0, 4, enable | (2u << 11) | PciFunction.HeaderType & ~3u);
        Assert.Equal(PciFunction.HeaderTypeMultiFunction, (byte)host.Read(PciHost.ConfigDataPort - PciHost.ConfigAddressPort + 2, 1));
        host.Write(0, 4, enable | (3u << 11));
        Assert.Equal(0xFFFFu, host.Read(PciHost.ConfigDataPort - PciHost.ConfigAddressPort, 2));
        host.Write(0, 4, enable | (1u << 16) | (2u << 11)); // bus 1 does not exist
        Assert.Equal(0xFFFFFFFFu, host.Read(PciHost.ConfigDataPort - PciHost.ConfigAddressPort, 4));
    }
}

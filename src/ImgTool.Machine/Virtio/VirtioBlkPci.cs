using ImgTool.Machine.Bus;
using ImgTool.Block.Devices;
using ImgTool.Machine.Devices;
using ImgTool.Machine.Memory;
using ImgTool.Machine.Pci;

namespace ImgTool.Machine.Virtio;

/// <summary>
/// virtio-blk as a PCI function (virtio 1.1, 4.1): vendor 1af4, the legacy interface in I/O BAR0
/// and/or the 1.0 interface in memory BAR4 behind vendor capabilities, as QEMU's virtio-blk-pci,
/// and INTx# (pin A) raised while the ISR holds a bit. MSI-X is not offered, so Linux uses INTx.
/// </summary>
internal sealed class VirtioBlkPci : PciFunction
{
    public const ushort VirtioVendorId = 0x1AF4;

    /// <summary>Transitional device IDs are 0x1000-0x103F; block is 0x1001 (4.1.2.3).</summary>
    public const ushort TransitionalBlockDeviceId = 0x1001;

    /// <summary>Modern device IDs are 0x1040 + the virtio device type (4.1.2.1).</summary>
    public const ushort ModernDeviceIdBase = 0x1040;

    /// <summary>A transitional device's subsystem ID is its virtio device type (4.1.2.3).</summary>
    public const ushort LegacySubsystemId = VirtioBlkDevice.BlockDeviceType;

    /// <summary>Non-transitional devices use a subsystem ID of 0x40 or more (4.1.2.1); QEMU's is 0x1100.</summary>
    public const ushort ModernSubsystemId = 0x1100;

    public const int LegacyBar = 0, ModernBar = 4;
    private const uint MassStorageScsiClass = 0x010000;
    private const byte TransitionalRevision = 0, ModernRevision = 1;

    public VirtioBlkPci(PhysicalMemory memory, IoBus io, IBlockDevice disk, VirtioPciMode mode = VirtioPciMode.Transitional, VirtioBlkOptions? options = null)
        : base(
            VirtioVendorId,
            mode == VirtioPciMode.ModernOnly ? (ushort)(ModernDeviceIdBase + VirtioBlkDevice.BlockDeviceType) : TransitionalBlockDeviceId,
            MassStorageScsiClass,
            mode == VirtioPciMode.ModernOnly ? ModernRevision : TransitionalRevision,
            VirtioVendorId,
            mode == VirtioPciMode.ModernOnly ? ModernSubsystemId : LegacySubsystemId)
    {
        Mode = mode;
        Device = new VirtioBlkDevice(new GuestRam(memory), disk, options ?? new VirtioBlkOptions(), modernInterface: mode != VirtioPciMode.LegacyOnly);
        Device.InterruptLevel = SetInterruptLevel;
        Config[InterruptPin] = InterruptPinA;

        if (mode != VirtioPciMode.ModernOnly)
        {
            var legacy = new VirtioLegacyTransport(Device);
            DefineBar(LegacyBar, new PciIoBar(io, legacy.BarSizeBytes, legacy));
        }

        if (mode != VirtioPciMode.LegacyOnly)
        {
            DefineBar(ModernBar, new PciMemoryBar(memory, VirtioModernTransport.BarSizeBytes, new VirtioModernTransport(Device)));
            AddCapability(VirtioPciCapability.VendorSpecificId, VirtioPciCapability.Body(
                VirtioPciCapability.CommonCfg, ModernBar, VirtioModernTransport.CommonOffset, VirtioModernTransport.RegionBytes));
            AddCapability(VirtioPciCapability.VendorSpecificId, VirtioPciCapability.Body(
                VirtioPciCapability.IsrCfg, ModernBar, VirtioModernTransport.IsrOffset, VirtioModernTransport.RegionBytes));
            AddCapability(VirtioPciCapability.VendorSpecificId, VirtioPciCapability.Body(
                VirtioPciCapability.DeviceCfg, ModernBar, VirtioModernTransport.DeviceOffset, VirtioModernTransport.RegionBytes));
            AddCapability(VirtioPciCapability.VendorSpecificId, VirtioPciCapability.Body(
                VirtioPciCapability.NotifyCfg, ModernBar, VirtioModernTransport.NotifyOffset, VirtioModernTransport.RegionBytes,
                VirtioModernTransport.NotifyOffMultiplier));
        }
    }

    public VirtioPciMode Mode { get; }

    public VirtioBlkDevice Device { get; }

    /// <summary>512-byte sectors read by the guest (for the run summary).</summary>
    public long SectorsRead => Device.SectorsRead;

    public long SectorsWritten => Device.SectorsWritten;
}

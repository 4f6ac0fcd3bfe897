using System.Buffers.Binary;

namespace ImgTool.Machine.Virtio;

/// <summary>
/// struct virtio_pci_cap (virtio 1.1, 4.1.4): a vendor-specific PCI capability naming where in
/// which BAR one configuration structure lives. Offsets are within the capability, from cap_vndr.
/// </summary>
internal static class VirtioPciCapability
{
    public const byte VendorSpecificId = 0x09;

    public const int CapVndr = 0, CapNext = CapVndr + 1, CapLen = CapNext + 1, CfgType = CapLen + 1, Bar = CfgType + 1,
        Id = Bar + 1, Padding = Id + 1, Offset = Padding + 2, Length = Offset + 4, CapBytes = Length + 4;

    /// <summary>struct virtio_pci_notify_cap adds notify_off_multiplier (4.1.4.4).</summary>
    public const int NotifyOffMultiplier = CapBytes, NotifyCapBytes = NotifyOffMultiplier + 4;

    // cfg_type values (4.1.4).
    public const byte CommonCfg = 1, NotifyCfg = 2, IsrCfg = 3, DeviceCfg = 4, PciCfg = 5;

    /// <summary>The capability's bytes after cap_vndr and cap_next, as PciFunction.AddCapability takes them.</summary>
    public static byte[] Body(byte cfgType, byte bar, uint offsetBytes, uint lengthBytes, uint? notifyOffMultiplier = null)
    {
        int capLength = notifyOffMultiplier is null ? CapBytes : NotifyCapBytes;
        var cap = new byte[capLength];
        cap[CapVndr] = VendorSpecificId;
        cap[CapLen] = (byte)capLength;
        cap[CfgType] = cfgType;
        cap[Bar] = bar;
        BinaryPrimitives.WriteUInt32LittleEndian(cap.AsSpan(Offset), offsetBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(cap.AsSpan(Length), lengthBytes);
        if (notifyOffMultiplier is { } multiplier)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(cap.AsSpan(NotifyOffMultiplier), multiplier);
        }

        return cap[(CapNext + 1)..];
    }
}

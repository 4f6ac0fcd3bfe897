namespace ImgTool.Machine.Virtio;

/// <summary>Which PCI interfaces a virtio device offers (QEMU's disable-legacy / disable-modern).</summary>
public enum VirtioPciMode
{
    /// <summary>Both: device 1af4:1001 with the legacy I/O BAR and the 1.0 capabilities (QEMU's default on pc).</summary>
    Transitional,

    /// <summary>disable-modern=on: device 1af4:1001, the legacy I/O BAR only.</summary>
    LegacyOnly,

    /// <summary>disable-legacy=on: device 1af4:1042 (0x1040 + type), revision 1, capabilities only.</summary>
    ModernOnly,
}

namespace ImgTool.Formats.Vhdx;

/// <summary>Bounds on values read from a VHDX file, checked before they size an allocation or a loop.</summary>
internal static class VhdxLimits
{
    public const long KiB = 1024;
    public const long MiB = 1024 * KiB;
    public const long GiB = 1024 * MiB;
    public const long TiB = 1024 * GiB;

    /// <summary>Spec 3.5.2.2: the virtual disk size is at most 64 TiB.</summary>
    public const long MaxVirtualSizeBytes = 64 * TiB;

    /// <summary>Spec 3.5.2.1: block size is a power of two from 1 MiB to 256 MiB.</summary>
    public const long MinBlockSizeBytes = MiB;
    public const long MaxBlockSizeBytes = 256 * MiB;

    /// <summary>Spec 3.1: at most 2047 region table entries after the 16-byte header.</summary>
    public const int MaxRegionEntries = 2047;

    /// <summary>Spec 3.5.1: at most 2047 metadata table entries.</summary>
    public const int MaxMetadataEntries = 2047;

    /// <summary>Spec 3.5.1.1: a metadata item is at most 1 MiB.</summary>
    public const int MaxMetadataItemBytes = (int)MiB;

    /// <summary>The whole BAT is kept in memory (as QEMU does); larger tables (more than 16 TiB in
    /// 1 MiB blocks, 512 TiB in the 32 MiB blocks Hyper-V uses) are refused rather than allocated.</summary>
    public const long MaxBatBytes = 128 * MiB;

    /// <summary>Offsets beyond this (1 PiB) cannot be real file positions here.</summary>
    public const long MaxFileOffsetBytes = 1024 * TiB;

    /// <summary>A single log entry is read into memory to check its CRC; QEMU writes entries of a few sectors.</summary>
    public const long MaxLogEntryBytes = 64 * MiB;

    /// <summary>Spec 3.5.2.6: parent locator key/value pairs (Hyper-V writes five).</summary>
    public const int MaxParentLocatorEntries = 256;

    /// <summary>Parent locator key/value strings are short paths and GUIDs.</summary>
    public const int MaxLocatorStringBytes = 64 * 1024;

    /// <summary>In-memory replay of a dirty log for a read-only open keeps at most this many patches.</summary>
    public const int MaxReplayPatches = 1 << 20;
}

namespace ImgTool.Formats.Qed;

/// <summary>The header's <c>features</c> bits (qed_spec "Feature bits"). An image with any other bit set must not be opened.</summary>
[Flags]
internal enum QedFeatures : ulong
{
    None = 0,

    /// <summary>QED_F_BACKING_FILE: the image has a backing file; its name is in the header cluster(s).</summary>
    BackingFile = 0x01,

    /// <summary>QED_F_NEED_CHECK: metadata may be inconsistent (an allocating write was under way); check before use.</summary>
    NeedCheck = 0x02,

    /// <summary>QED_F_BACKING_FORMAT_NO_PROBE: the backing file is raw and must not be probed. It is the only way QED
    /// stores a backing format: any other format named at create is probed again on open, as QEMU does.</summary>
    BackingFormatNoProbe = 0x04,

    Known = BackingFile | NeedCheck | BackingFormatNoProbe,
}

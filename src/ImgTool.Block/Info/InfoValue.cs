namespace ImgTool.Block.Info;

/// <summary>
/// A small ordered tree of values for the parts of `info` that differ per format
/// (QEMU's ImageInfoSpecific). The CLI renders it as JSON or as indented text; the
/// insertion order of object members is kept, since qemu-img prints fields in a fixed order.
/// </summary>
public abstract record InfoValue
{
    public static InfoValue Of(string value) => new InfoString(value);

    public static InfoValue Of(long value) => new InfoNumber(value);

    public static InfoValue Of(bool value) => new InfoBool(value);
}

public sealed record InfoString(string Value) : InfoValue;

public sealed record InfoNumber(long Value) : InfoValue;

public sealed record InfoBool(bool Value) : InfoValue;

public sealed record InfoArray(IReadOnlyList<InfoValue> Items) : InfoValue;

/// <summary>An object whose members keep the order they were added in.</summary>
public sealed record InfoObject(IReadOnlyList<KeyValuePair<string, InfoValue>> Members) : InfoValue
{
    public InfoValue? this[string key] => Members.FirstOrDefault(m => m.Key == key).Value;
}

/// <summary>What `info` shows beyond size and format.</summary>
/// <param name="ClusterSizeBytes">The allocation unit, when the format has one.</param>
/// <param name="DirtyFlag">True when the image was not closed cleanly (qcow2 lazy refcounts, VHDX log).</param>
/// <param name="FormatSpecificType">The "type" of qemu-img's format-specific block (e.g. "qcow2"), or null when there is none.</param>
/// <param name="FormatSpecific">The "data" of that block.</param>
/// <param name="Subformat">The variant, named as the format's `subformat` create option names it (VHD fixed /
/// dynamic / differencing, VMDK createType, VHDX dynamic / fixed / differencing); null when the format has none.
/// Presets check it: platforms accept some variants only.</param>
/// <param name="AdapterType">The virtual disk controller the image names (VMDK ddb.adapterType), or null.</param>
/// <param name="ActualSizeBytes">Bytes on the host for an image spread over several files (VMDK extents), which
/// qemu-img sums for actual-size; null means the allocated size of the image's host file.</param>
/// <param name="ReportsDriverInfo">False for formats whose QEMU driver has no bdrv_get_info (parallels, bochs, cloop,
/// dmg): qemu-img then prints neither cluster-size nor dirty-flag.</param>
public sealed record ImageDetails(
    long? ClusterSizeBytes = null,
    bool DirtyFlag = false,
    string? FormatSpecificType = null,
    InfoObject? FormatSpecific = null,
    bool Encrypted = false,
    long? ActualSizeBytes = null,
    string? Subformat = null,
    string? AdapterType = null,
    bool ReportsDriverInfo = true)
{
    public static ImageDetails None { get; } = new();
}

using ImgTool.Block.Errors;

namespace ImgTool.Operations.Presets;

/// <summary>
/// A destination platform's requirements, as `--preset NAME` applies them to create and convert
/// (format, create options, size rounding) and as `info --preset NAME` checks them.
/// </summary>
/// <param name="Name">What the user types after --preset.</param>
/// <param name="Platform">The platform, for messages.</param>
/// <param name="Format">The target format.</param>
/// <param name="Options">Create options the preset sets; the user may repeat them, not contradict them.</param>
/// <param name="SizeAlignmentBytes">The virtual size is rounded up to a multiple of this.</param>
/// <param name="AcceptedSubformats">Variants the platform takes (checked by info).</param>
public sealed record Preset(
    string Name,
    string Platform,
    string Format,
    IReadOnlyList<KeyValuePair<string, string>> Options,
    long SizeAlignmentBytes,
    IReadOnlyList<string> AcceptedSubformats,
    long MaxSizeBytes)
{
    private const long MiB = 1 << 20;
    private const long GiB = 1L << 30;

    /// <summary>
    /// Azure takes fixed VHDs only, sized to a whole MiB, with the size stored exactly (force_size:
    /// no CHS rounding); a VHD cannot exceed 2040 GiB. Hyper-V: dynamic VHDX, whole MiB. ESXi: a
    /// streamOptimized VMDK on an lsilogic controller for upload and OVA import, or a monolithicFlat
    /// one for a datastore.
    /// </summary>
    public static IReadOnlyList<Preset> All { get; } =
    [
        new("azure", "Azure", "vpc", [new("subformat", "fixed"), new("force_size", "on")], MiB, ["fixed"], 2040 * GiB),
        new("hyperv", "Hyper-V", "vhdx", [new("subformat", "dynamic")], MiB, ["dynamic", "fixed", "differencing"], 64L * 1024 * GiB),
        new("esxi", "ESXi (upload / OVA)", "vmdk", [new("subformat", "streamOptimized"), new("adapter_type", "lsilogic")], 512, ["streamOptimized", "monolithicFlat", "vmfs", "vmfsThin"], 62L * 1024 * GiB),
        new("esxi-flat", "ESXi (datastore)", "vmdk", [new("subformat", "monolithicFlat"), new("adapter_type", "lsilogic")], 512, ["monolithicFlat", "vmfs", "vmfsThin"], 62L * 1024 * GiB),
    ];

    public static Preset Get(string name) =>
        All.FirstOrDefault(p => p.Name == name)
        ?? throw new InvalidOptionException($"unknown preset '{name}' (known: {string.Join(", ", All.Select(p => p.Name))})");

    public long RoundSize(long sizeBytes) => (sizeBytes + SizeAlignmentBytes - 1) / SizeAlignmentBytes * SizeAlignmentBytes;

    /// <summary>The format to create: the preset's, unless the user named another (an error).</summary>
    public string ResolveFormat(string? userFormat) =>
        userFormat is null || userFormat == Format
            ? Format
            : throw new InvalidOptionException($"--preset {Name} writes format '{Format}', not '{userFormat}'");

    /// <summary>The user's -o strings plus the preset's options; a contradicting user value is an error.</summary>
    public IReadOnlyList<string> MergeOptions(IReadOnlyList<string> userOptions)
    {
        var parsed = Block.Options.ImageOptions.Parse(userOptions);
        foreach (var (key, value) in Options)
        {
            if (parsed.GetString(key) is { } given && given != value)
            {
                throw new InvalidOptionException($"-o {key}={given} contradicts --preset {Name}, which needs {key}={value}");
            }
        }

        return [.. Options.Select(kv => $"{kv.Key}={kv.Value}"), .. userOptions];
    }
}

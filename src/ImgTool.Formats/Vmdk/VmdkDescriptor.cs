using System.Globalization;
using System.Text;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vmdk;

/// <summary>One extent line of a descriptor: <c>RW 6291456 SPARSE "disk.vmdk"</c>, <c>RW n FLAT "disk-flat.vmdk" 0</c>
/// or <c>RW n ZERO</c> (no file: VMware "Virtual Disk Format 1.1", "Extent Descriptions").</summary>
/// <param name="Access">RW, RDONLY or NOACCESS.</param>
internal sealed record VmdkExtentLine(string Access, long SizeSectors, string Type, string FileName, long FlatOffsetSectors)
{
    public bool IsFlat => Type is "FLAT" or "VMFS";

    /// <summary>A ZERO extent reads as zeros and has no file.</summary>
    public bool IsZero => Type == "ZERO";

    /// <summary>A raw device map (VMFSRDM, VMFSRAW): the extent is a host device, not a file.</summary>
    public bool IsRawDevice => Type is "VMFSRDM" or "VMFSRAW";

    public override string ToString() =>
        IsFlat && Type == "FLAT" ? string.Create(CultureInfo.InvariantCulture, $"{Access} {SizeSectors} {Type} \"{FileName}\" {FlatOffsetSectors}")
        : IsZero && FileName.Length == 0 ? string.Create(CultureInfo.InvariantCulture, $"{Access} {SizeSectors} {Type}")
        : string.Create(CultureInfo.InvariantCulture, $"{Access} {SizeSectors} {Type} \"{FileName}\"");
}

/// <summary>
/// The text descriptor of a VMDK (VMware "Virtual Disk Format 1.1", "The Descriptor File"): header fields
/// (version, CID, parentCID, createType, parentFileNameHint), extent lines and the disk database (ddb.*).
/// Parsed line by line; unknown lines are ignored, as VMware and QEMU do.
/// </summary>
internal sealed class VmdkDescriptor
{
    /// <summary>The parentCID of an image without a parent.</summary>
    public const uint NoParentCid = 0xffffffff;

    /// <summary>createType values a separate descriptor file may name (QEMU's list plus vmfsThin, a VMFS flat disk, and the
    /// raw device map types, so that their extents are refused with a message naming the device).</summary>
    public static readonly IReadOnlyList<string> DescriptorFileTypes =
        ["monolithicFlat", "vmfs", "vmfsThin", "vmfsSparse", "seSparse", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat",
         "vmfsRaw", "vmfsRawDeviceMap", "vmfsPassthroughRawDeviceMap"];

    public int Version { get; set; } = 1;

    public uint Cid { get; set; }

    public uint ParentCid { get; set; } = NoParentCid;

    public string? CreateType { get; set; }

    public string? ParentFileNameHint { get; set; }

    public List<VmdkExtentLine> Extents { get; } = [];

    /// <summary>ddb.* entries in file order, keys without the "ddb." prefix.</summary>
    public List<KeyValuePair<string, string>> Ddb { get; } = [];

    public string? GetDdb(string key) => Ddb.LastOrDefault(kv => kv.Key == key).Value;

    /// <summary>Parses descriptor text (already cut at its first NUL). Malformed extent lines are an error, as in QEMU.</summary>
    public static VmdkDescriptor Parse(string text, string? fileName)
    {
        var descriptor = new VmdkDescriptor();
        bool haveCid = false;
        bool haveParentCid = false;
        foreach (string rawLine in text.Split('\n'))
        {
            string line = rawLine.TrimEnd('\r').Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            if (line.Length > VmdkLimits.MaxDescriptorLineChars)
            {
                throw new ImageFormatException($"descriptor line longer than {VmdkLimits.MaxDescriptorLineChars} characters", fileName);
            }

            if (line.StartsWith("RW ", StringComparison.Ordinal) || line.StartsWith("RDONLY ", StringComparison.Ordinal) || line.StartsWith("NOACCESS ", StringComparison.Ordinal))
            {
                if (ParseExtent(line, fileName) is { } extent)
                {
                    if (descriptor.Extents.Count >= VmdkLimits.MaxExtents)
                    {
                        throw new ImageFormatException($"descriptor names more than {VmdkLimits.MaxExtents} extents", fileName);
                    }

                    descriptor.Extents.Add(extent);
                }

                continue;
            }

            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }

            string key = line[..eq].Trim();
            string value = Unquote(line[(eq + 1)..].Trim());
            switch (key)
            {
                case "version":
                    descriptor.Version = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : 0;
                    break;
                case "CID":
                    descriptor.Cid = ParseCid(value, key, fileName);
                    haveCid = true;
                    break;
                case "parentCID":
                    descriptor.ParentCid = ParseCid(value, key, fileName);
                    haveParentCid = true;
                    break;
                case "createType":
                    descriptor.CreateType = value;
                    break;
                case "parentFileNameHint":
                    descriptor.ParentFileNameHint = value;
                    break;
                default:
                    if (key.StartsWith("ddb.", StringComparison.Ordinal))
                    {
                        descriptor.Ddb.Add(new(key[4..], value));
                    }

                    break;
            }
        }

        if (!haveCid || !haveParentCid)
        {
            throw new ImageFormatException($"invalid VMDK descriptor: no {(haveCid ? "parentCID" : "CID")} line", fileName);
        }

        return descriptor;
    }

    /// <summary>The descriptor text in the layout QEMU and VMware write.</summary>
    public string Serialize()
    {
        var text = new StringBuilder();
        text.Append("# Disk DescriptorFile\n");
        text.Append(CultureInfo.InvariantCulture, $"version={Version}\n");
        text.Append(CultureInfo.InvariantCulture, $"CID={Cid:x8}\n");
        text.Append(CultureInfo.InvariantCulture, $"parentCID={ParentCid:x8}\n");
        text.Append(CultureInfo.InvariantCulture, $"createType=\"{CreateType}\"\n");
        if (ParentFileNameHint is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"parentFileNameHint=\"{ParentFileNameHint}\"\n");
        }

        text.Append("\n# Extent description\n");
        foreach (VmdkExtentLine extent in Extents)
        {
            text.Append(extent).Append('\n');
        }

        text.Append("\n# The Disk Data Base\n#DDB\n\n");
        foreach (var (key, value) in Ddb)
        {
            text.Append(CultureInfo.InvariantCulture, $"ddb.{key} = \"{value}\"\n");
        }

        return text.ToString();
    }

    /// <summary>Reads descriptor text from bytes: ASCII/UTF-8 up to the first NUL.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        int nul = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? bytes : bytes[..nul]);
    }

    private static VmdkExtentLine? ParseExtent(string line, string? fileName)
    {
        // ACCESS SIZE TYPE "FILE" [OFFSET]; the file name is quoted and may contain spaces. A ZERO extent has none.
        int quote = line.IndexOf('"', StringComparison.Ordinal);
        if (quote < 0)
        {
            string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 3 && parts[2] == "ZERO"
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long zeroSectors)
                && zeroSectors > 0 && zeroSectors <= VmdkLimits.MaxCapacitySectors)
            {
                return new VmdkExtentLine(parts[0], zeroSectors, "ZERO", string.Empty, 0);
            }
        }

        int endQuote = quote < 0 ? -1 : line.IndexOf('"', quote + 1);
        string[] head = (quote < 0 ? line : line[..quote]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (quote < 0 || endQuote < 0 || head.Length != 3
            || !long.TryParse(head[1], NumberStyles.None, CultureInfo.InvariantCulture, out long sectors))
        {
            throw new ImageFormatException($"invalid extent line: {line}", fileName);
        }

        string type = head[2];
        string name = line[(quote + 1)..endQuote];
        string rest = line[(endQuote + 1)..].Trim();
        long flatOffset = 0;
        if (type == "FLAT")
        {
            if (!long.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out flatOffset))
            {
                throw new ImageFormatException($"invalid extent line: {line}", fileName);
            }
        }
        else if (rest.Length != 0 && type is "SPARSE" or "VMFS" or "VMFSSPARSE" or "SESPARSE")
        {
            throw new ImageFormatException($"invalid extent line: {line}", fileName);
        }

        if (sectors <= 0 || sectors > VmdkLimits.MaxCapacitySectors || flatOffset > VmdkLimits.MaxCapacitySectors * 2)
        {
            throw new ImageFormatException($"invalid extent size or offset: {line}", fileName);
        }

        if (name.Length == 0 && type != "ZERO")
        {
            throw new ImageFormatException($"invalid extent line (no file name): {line}", fileName);
        }

        return new VmdkExtentLine(head[0], sectors, type, name, flatOffset);
    }

    private static uint ParseCid(string value, string key, string? fileName) =>
        uint.TryParse(value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out uint cid)
            ? cid
            : throw new ImageFormatException($"invalid VMDK descriptor: bad {key} '{value}'", fileName);

    private static string Unquote(string value) =>
        value.Length >= 2 && value[0] == '"' && value[^1] == '"' ? value[1..^1] : value;
}

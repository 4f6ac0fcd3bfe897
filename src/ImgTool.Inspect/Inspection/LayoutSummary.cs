using System.Globalization;
using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats;
using ImgTool.Inspect.Bootloaders;
using ImgTool.Inspect.Disk;
using ImgTool.Inspect.Partitions;

namespace ImgTool.Inspect.Inspection;

/// <summary>One line on the disk's layout for another command's report (a boot that failed): the table, its
/// partitions with their file systems, which one is marked bootable, and the boot code in the MBR, so that "no
/// bootable disk" on an image without an active partition or without boot code says so.</summary>
public static class LayoutSummary
{
    /// <summary>The line, or null when the image cannot be read (the command has already said why).</summary>
    public static async ValueTask<string?> DescribeAsync(ImageOpener opener, string fileName, string? format, CancellationToken cancellationToken)
    {
        try
        {
            await using IImage image = await InspectedImage.OpenAsync(opener, fileName, format, forceShare: true, cancellationToken).ConfigureAwait(false);
            return await DescribeAsync(image, fileName, cancellationToken).ConfigureAwait(false);
        }
        catch (ImgToolException)
        {
            return null;
        }
    }

    public static async ValueTask<string> DescribeAsync(IBlockDevice device, string fileName, CancellationToken cancellationToken)
    {
        var disk = new DiskView(device, fileName);
        var (table, volumes) = await DiskInspector.VolumesAsync(disk, cancellationToken).ConfigureAwait(false);
        var text = new StringBuilder();
        byte[] mbr = await disk.ReadHeadAsync(0, Partition.SectorBytes, cancellationToken).ConfigureAwait(false);
        if (table is null)
        {
            string signature = MbrReader.HasSignature(mbr) ? "a 0x55AA boot signature" : "no 0x55AA boot signature";
            string? fs = volumes.FirstOrDefault()?.Filesystem?.Type;
            return fs is null ? $"no partition table, no file system, {signature}" : $"no partition table; the whole disk is {fs}, with {signature}";
        }

        text.Append(CultureInfo.InvariantCulture, $"{table.Label} partition table, {table.Partitions.Count} partition{(table.Partitions.Count == 1 ? string.Empty : "s")}");
        if (volumes.Count > 0)
        {
            text.Append(": ").AppendJoin(", ", volumes.Select(v => $"{v.Partition!.Number} {v.Filesystem?.Type ?? (v.Partition.IsContainer ? "extended" : "unknown")}{(v.Partition.Bootable ? " (bootable)" : string.Empty)}"));
        }

        if (table.Label == "dos" && !table.Partitions.Any(p => p.Bootable))
        {
            text.Append("; no partition is marked bootable");
        }

        string loader = BootCodeSignatures.MbrLoader(mbr) ?? (mbr.AsSpan(0, 440).ContainsAnyExcept((byte)0) ? "not recognised" : "none (all zeros)");
        text.Append("; MBR boot code: ").Append(loader);
        return text.ToString();
    }
}

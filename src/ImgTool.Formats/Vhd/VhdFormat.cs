using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats.Vhd;

/// <summary>VHD, qemu's "vpc": Microsoft's Virtual Hard Disk format (fixed, dynamic and differencing disks).</summary>
public sealed class VhdFormat(TimeProvider clock) : FormatDriver
{
    /// <summary>Azure takes fixed VHDs whose virtual size is a whole number of MiB.</summary>
    public const long AzureSizeAlignmentBytes = 1 << 20;

    public static VhdFormat Instance { get; } = new(TimeProvider.System);

    public override string Name => "vpc";

    public override IReadOnlyList<ImageOptionSpec> CreateOptionSpecs { get; } =
    [
        new("size", ImageOptionKind.Size, "Virtual disk size"),
        new("subformat", ImageOptionKind.Choice, "Type of virtual hard disk format. Supported formats are {dynamic (default) | fixed} ", ["dynamic", "fixed"], "dynamic"),
        new("force_size", ImageOptionKind.Bool, "Force disk size calculation to use the actual size specified, rather than using the nearest CHS-based calculation", Default: "off"),
    ];

    public override bool SupportsBackingFile => true;

    /// <summary>
    /// What `--preset azure` needs: the size rounded up to a whole MiB and the options for a fixed VHD with exactly that
    /// size (force_size keeps CHS rounding from changing it).
    /// </summary>
    public static (long SizeBytes, ImageOptions Options) AzurePreset(long sizeBytes) =>
        ((sizeBytes + AzureSizeAlignmentBytes - 1) / AzureSizeAlignmentBytes * AzureSizeAlignmentBytes,
         ImageOptions.Parse(["subformat=fixed,force_size=on"]));

    /// <summary>
    /// Why Azure would refuse an image as an uploaded disk, for `info` to warn about: Azure takes only fixed VHDs whose
    /// virtual size is a whole number of MiB (the footer at the end, nothing after it). Empty when Azure would take it.
    /// </summary>
    public static IReadOnlyList<string> AzureProblems(IImage image)
    {
        if (image is not VhdImage vhd)
        {
            return [$"Azure takes fixed VHD (vpc) images, not {image.FormatName}"];
        }

        var problems = new List<string>();
        if (!vhd.IsFixed)
        {
            problems.Add($"Azure takes fixed VHDs only; this one is {vhd.Footer.DiskType.ToString().ToLowerInvariant()} (convert with -o subformat=fixed,force_size=on)");
        }

        if (vhd.SizeBytes % AzureSizeAlignmentBytes != 0)
        {
            problems.Add($"Azure needs a virtual size that is a whole number of MiB; this one is {vhd.SizeBytes} bytes");
        }

        if ((long)vhd.Footer.CurrentSize != vhd.SizeBytes)
        {
            problems.Add($"the footer's current size ({vhd.Footer.CurrentSize}) differs from the size given by the CHS geometry ({vhd.SizeBytes}); Azure reads the current size");
        }

        if (vhd.IsFixed && vhd.HostFile.Length != vhd.SizeBytes + VhdFooter.SizeBytes)
        {
            problems.Add($"the file should be the virtual size plus the 512-byte footer ({vhd.SizeBytes + VhdFooter.SizeBytes} bytes), but is {vhd.HostFile.Length}");
        }

        return problems;
    }

    /// <summary>
    /// "conectix" at offset 0 is a dynamic or differencing disk. A fixed disk has its footer only in the last 512 bytes,
    /// which qemu 7.2 does not look at (it probes such a file as raw, footer included); a valid footer there is taken too.
    /// </summary>
    public override int Probe(ProbeInput input)
    {
        if (VhdFooter.HasCookie(input.Head))
        {
            return 100;
        }

        ReadOnlySpan<byte> tail = input.Tail;
        return tail.Length == VhdFooter.SizeBytes && VhdFooter.HasCookie(tail) && VhdFooter.ChecksumMatches(tail) ? 100 : 0;
    }

    public override async ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken = default) =>
        await VhdImage.OpenAsync(file, context, cancellationToken).ConfigureAwait(false);

    public override ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken = default) =>
        VhdCreate.CreateAsync(file, request, clock, cancellationToken);
}

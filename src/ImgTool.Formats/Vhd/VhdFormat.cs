using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats.Vhd;

/// <summary>VHD, qemu's "vpc": Microsoft's Virtual Hard Disk format (fixed, dynamic and differencing disks).</summary>
public sealed class VhdFormat(TimeProvider clock) : FormatDriver
{
    public static VhdFormat Instance { get; } = new(TimeProvider.System);

    public override string Name => "vpc";

    public override IReadOnlyList<ImageOptionSpec> CreateOptionSpecs { get; } =
    [
        new("size", ImageOptionKind.Size, "Virtual disk size"),
        new("subformat", ImageOptionKind.Choice, "Type of virtual hard disk format. Supported formats are {dynamic (default) | fixed} ", ["dynamic", "fixed"]),
        new("force_size", ImageOptionKind.Bool, "Force disk size calculation to use the actual size specified, rather than using the nearest CHS-based calculation"),
    ];

    public override bool SupportsBackingFile => true;

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

using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats.Vdi;

/// <summary>VDI: VirtualBox's Virtual Disk Image (dynamic, static and differencing images), qemu's "vdi".</summary>
public sealed class VdiFormat : FormatDriver
{
    public static VdiFormat Instance { get; } = new();

    public override string Name => "vdi";

    /// <summary>qemu 7.2's vdi options (its cluster_size is compiled out; it has no preallocation option).</summary>
    public override IReadOnlyList<ImageOptionSpec> CreateOptionSpecs { get; } =
    [
        new("size", ImageOptionKind.Size, "Virtual disk size"),
        new("static", ImageOptionKind.Bool, "VDI static (pre-allocated) image", Default: "off"),
    ];

    /// <summary>Differencing images (VirtualBox snapshots) have a parent, linked by UUID.</summary>
    public override bool SupportsBackingFile => true;

    /// <summary>As qemu: the signature at offset 64 is enough.</summary>
    public override int Probe(ProbeInput input) => VdiHeader.HasSignature(input.Head) ? 100 : 0;

    public override async ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken = default) =>
        await VdiImage.OpenAsync(file, context, cancellationToken).ConfigureAwait(false);

    public override ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken = default) =>
        VdiCreate.CreateAsync(file, request, cancellationToken);
}

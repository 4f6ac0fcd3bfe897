using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats.Qed;

/// <summary>QEMU's QED format (docs/interop/qed_spec.rst): two-level tables, backing files of any format, zero clusters.</summary>
public sealed class QedFormat : FormatDriver
{
    public static QedFormat Instance { get; } = new();

    private QedFormat()
    {
    }

    public override string Name => "qed";

    public override bool SupportsBackingFile => true;

    /// <summary>qemu-img 7.2's qed options in its internal order (its "Formatting ..." line), cluster_size's default as it prints it.</summary>
    public override IReadOnlyList<ImageOptionSpec> CreateOptionSpecs { get; } =
    [
        new("size", ImageOptionKind.Size, "Virtual disk size"),
        new("backing_file", ImageOptionKind.String, "File name of a base image"),
        new("backing_fmt", ImageOptionKind.String, "Image format of the base image"),
        new("cluster_size", ImageOptionKind.Size, "Cluster size (in bytes)", Default: "65536"),
        new("table_size", ImageOptionKind.Size, "L1/L2 table size (in clusters)"),
    ];

    /// <summary>The magic "QED\0" with a whole header behind it, as QEMU's bdrv_qed_probe.</summary>
    public override int Probe(ProbeInput input) => QedHeader.HasMagic(input.Head) ? 100 : 0;

    public override async ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken = default) =>
        await QedImage.OpenAsync(file, context, cancellationToken).ConfigureAwait(false);

    public override ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken = default) =>
        QedCreate.CreateAsync(file, request, cancellationToken);
}

using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Formats.ReadOnly;

namespace ImgTool.Formats.QcowV1;

/// <summary>qcow version 1, QEMU's original copy-on-write format: read only (qemu's "qcow").</summary>
public sealed class QcowV1Format : ReadOnlyFormatDriver
{
    public static QcowV1Format Instance { get; } = new();

    private QcowV1Format()
    {
    }

    public override string Name => "qcow";

    public override bool SupportsBackingFile => true;

    public override int Probe(ProbeInput input) => QcowV1Header.IsQcowV1(input.Head) ? 100 : 0;

    protected override async ValueTask<IImage> OpenReadOnlyAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken) =>
        await QcowV1Image.OpenAsync(file, context, cancellationToken).ConfigureAwait(false);
}

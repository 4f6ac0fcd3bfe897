using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Formats.ReadOnly;

namespace ImgTool.Formats.Bochs;

/// <summary>Bochs growing (redolog) images made by bximage, read only.</summary>
public sealed class BochsFormat : ReadOnlyFormatDriver
{
    public static BochsFormat Instance { get; } = new();

    private BochsFormat()
    {
    }

    public override string Name => "bochs";

    public override int Probe(ProbeInput input) => BochsHeader.Matches(input.Head) ? 100 : 0;

    protected override async ValueTask<IImage> OpenReadOnlyAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken) =>
        await BochsImage.OpenAsync(file, cancellationToken).ConfigureAwait(false);
}

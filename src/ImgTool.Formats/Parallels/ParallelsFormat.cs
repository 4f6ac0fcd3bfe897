using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Formats.ReadOnly;

namespace ImgTool.Formats.Parallels;

/// <summary>Parallels expandable images ("WithoutFreeSpace" and "WithouFreSpacExt"), read only.</summary>
public sealed class ParallelsFormat : ReadOnlyFormatDriver
{
    public static ParallelsFormat Instance { get; } = new();

    private ParallelsFormat()
    {
    }

    public override string Name => "parallels";

    public override int Probe(ProbeInput input) => ParallelsHeader.Matches(input.Head) ? 100 : 0;

    protected override async ValueTask<IImage> OpenReadOnlyAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken) =>
        await ParallelsImage.OpenAsync(file, cancellationToken).ConfigureAwait(false);
}

using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Formats.ReadOnly;

namespace ImgTool.Formats.Cloop;

/// <summary>cloop (Linux compressed loop, V2.0) images, read only.</summary>
public sealed class CloopFormat : ReadOnlyFormatDriver
{
    public static CloopFormat Instance { get; } = new();

    private CloopFormat()
    {
    }

    public override string Name => "cloop";

    /// <summary>QEMU scores the script preamble 2: above raw, below every format with a real magic.</summary>
    public override int Probe(ProbeInput input) => CloopHeader.Matches(input.Head) ? 2 : 0;

    protected override async ValueTask<IImage> OpenReadOnlyAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken) =>
        await CloopImage.OpenAsync(file, cancellationToken).ConfigureAwait(false);
}

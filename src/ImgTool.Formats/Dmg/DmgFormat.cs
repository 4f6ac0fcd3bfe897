using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Formats.ReadOnly;

namespace ImgTool.Formats.Dmg;

/// <summary>Apple UDIF disk images (.dmg), read only.</summary>
public sealed class DmgFormat : ReadOnlyFormatDriver
{
    public static DmgFormat Instance { get; } = new();

    private DmgFormat()
    {
    }

    public override string Name => "dmg";

    /// <summary>As QEMU's dmg_probe: a UDIF image has no magic at its start, so only a name ending in ".dmg" is taken,
    /// with score 2 (above raw, below any format with a magic).</summary>
    public override int Probe(ProbeInput input) =>
        input.FileName is { Length: > 4 } name && name.EndsWith(".dmg", StringComparison.Ordinal) ? 2 : 0;

    protected override async ValueTask<IImage> OpenReadOnlyAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken) =>
        await DmgImage.OpenAsync(file, cancellationToken).ConfigureAwait(false);
}

using ImgTool.Block.Devices;
using ImgTool.Formats;

namespace ImgTool.Inspect.Inspection;

public sealed record InspectOptions(string FileName, string? Format = null, bool ForceShare = false);

/// <summary>imgtool inspect: what is inside an image, read through its format and backing chain, never written.</summary>
public sealed class InspectOperation(ImageOpener opener)
{
    public async ValueTask<InspectResult> RunAsync(InspectOptions options, CancellationToken cancellationToken = default)
    {
        await using IImage image = await InspectedImage.OpenAsync(opener, options.FileName, options.Format, options.ForceShare, cancellationToken).ConfigureAwait(false);
        return await DiskInspector.InspectAsync(image, options.FileName, cancellationToken).ConfigureAwait(false);
    }
}

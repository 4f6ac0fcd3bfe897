using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats.ReadOnly;

/// <summary>
/// A format imgtool reads but never writes (qcow v1, parallels, bochs, cloop, dmg): open, probe, info, map, compare and
/// convert from it work; create, convert -O and any open for write fail with one "read-only format" line.
/// </summary>
public abstract class ReadOnlyFormatDriver : FormatDriver
{
    public override bool IsReadOnlyFormat => true;

    /// <summary>Nothing to create, so no options.</summary>
    public override IReadOnlyList<ImageOptionSpec> CreateOptionSpecs { get; } = [];

    public override bool CreatesZeroedImages => false;

    public sealed override async ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken = default)
    {
        if (!context.ReadOnly)
        {
            EnsureWritableFormat(file.Path);
        }

        return await OpenReadOnlyAsync(file, context, cancellationToken).ConfigureAwait(false);
    }

    public sealed override ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken = default)
    {
        EnsureWritableFormat(file.Path);
        return ValueTask.CompletedTask;
    }

    /// <summary>Opens the image for reading; the context is always read-only here.</summary>
    protected abstract ValueTask<IImage> OpenReadOnlyAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken);
}

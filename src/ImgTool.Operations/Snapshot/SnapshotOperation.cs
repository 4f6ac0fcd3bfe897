using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats;

namespace ImgTool.Operations.Snapshot;

public enum SnapshotAction
{
    List,
    Create,
    Apply,
    Delete,
}

public sealed record SnapshotOptions(string FileName, SnapshotAction Action, string? Name = null, string? Format = null, bool ForceShare = false);

/// <summary>The snapshots after the action (the list for -l).</summary>
public sealed record SnapshotResult(string FileName, IReadOnlyList<SnapshotInfo> Snapshots);

/// <summary>imgtool snapshot: list, create, apply or delete internal snapshots (qemu-img snapshot).</summary>
public sealed class SnapshotOperation(ImageOpener opener, TimeProvider clock)
{
    public async ValueTask<SnapshotResult> RunAsync(SnapshotOptions options, CancellationToken cancellationToken = default)
    {
        bool readOnly = options.Action == SnapshotAction.List;
        if (!readOnly && options.Name is null)
        {
            throw new InvalidOptionException("a snapshot name is required");
        }

        await using IImage image = await opener.OpenAsync(
            options.FileName,
            new ImageOpenRequest(options.Format, ReadOnly: readOnly, ForceShare: options.ForceShare && readOnly, OpenBacking: false),
            cancellationToken).ConfigureAwait(false);
        if (image is not ISnapshots snapshots)
        {
            if (options.Action == SnapshotAction.List)
            {
                return new SnapshotResult(options.FileName, []); // qemu-img lists nothing, successfully
            }

            throw new UnsupportedFeatureException($"format '{image.FormatName}' does not support internal snapshots", options.FileName);
        }

        switch (options.Action)
        {
            case SnapshotAction.Create:
                await snapshots.CreateSnapshotAsync(options.Name!, clock.GetUtcNow(), cancellationToken).ConfigureAwait(false);
                break;
            case SnapshotAction.Apply:
                await snapshots.ApplySnapshotAsync(options.Name!, cancellationToken).ConfigureAwait(false);
                break;
            case SnapshotAction.Delete:
                await snapshots.DeleteSnapshotAsync(options.Name!, cancellationToken).ConfigureAwait(false);
                break;
        }

        if (!readOnly)
        {
            await image.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        return new SnapshotResult(options.FileName, await snapshots.ListSnapshotsAsync(cancellationToken).ConfigureAwait(false));
    }
}

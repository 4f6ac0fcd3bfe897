using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats;
using ImgTool.Inspect.Files;
using ImgTool.Inspect.Inspection;

namespace ImgTool.Inspect.GuestFiles;

public sealed record GuestFileOptions(string Target, string? Format = null, bool ForceShare = false);

/// <summary>An entry as ls shows it: the entry and, for a symbolic link, its target.</summary>
public sealed record ListedEntry(GuestEntry Entry, string? LinkTarget);

/// <param name="IsDirectory">The path named a directory (its entries are listed), else the one file itself.</param>
public sealed record ListResult(string Path, bool IsDirectory, IReadOnlyList<ListedEntry> Entries);

/// <summary>imgtool ls: the entries of a directory inside an image (or the one file named), read-only.</summary>
public sealed class ListOperation(ImageOpener opener)
{
    public async ValueTask<ListResult> RunAsync(GuestFileOptions options, CancellationToken cancellationToken = default)
    {
        GuestTarget target = GuestTarget.Parse(options.Target);
        await using IImage image = await InspectedImage.OpenAsync(opener, target.ImageFileName, options.Format, options.ForceShare, cancellationToken).ConfigureAwait(false);
        IGuestFileSystem fs = await GuestVolumes.OpenAsync(image, target, cancellationToken).ConfigureAwait(false);
        try
        {
            // A trailing slash asks for the directory a link points to, as ls does.
            GuestEntry entry = await GuestPath.ResolveAsync(fs, target.Path, followFinal: target.Path.EndsWith('/'), cancellationToken).ConfigureAwait(false);
            if (entry.Kind != GuestFileKind.Directory)
            {
                return new ListResult(target.Path, false, [await ListedAsync(fs, entry, cancellationToken).ConfigureAwait(false)]);
            }

            var listed = new List<ListedEntry>();
            foreach (GuestEntry child in await fs.ListAsync(entry, cancellationToken).ConfigureAwait(false))
            {
                listed.Add(await ListedAsync(fs, child, cancellationToken).ConfigureAwait(false));
            }

            return new ListResult(target.Path, true, listed);
        }
        catch (ImgToolException e) when (e.FileName is null)
        {
            throw Rename(e, target);
        }
    }

    internal static ImgToolException Rename(ImgToolException e, GuestTarget target) =>
        e is GuestPathException ? new GuestPathException(e.Message, target.ImageFileName) : new FilesystemCorruptException($"{target.Path}: {e.Message}", target.ImageFileName);

    private static async ValueTask<ListedEntry> ListedAsync(IGuestFileSystem fs, GuestEntry entry, CancellationToken cancellationToken) =>
        new(entry, entry.Kind == GuestFileKind.Symlink ? await fs.ReadLinkAsync(entry, cancellationToken).ConfigureAwait(false) : null);
}

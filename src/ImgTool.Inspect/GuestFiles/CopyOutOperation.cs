using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats;
using ImgTool.Inspect.Files;
using ImgTool.Inspect.Inspection;

namespace ImgTool.Inspect.GuestFiles;

public sealed record CopyOutResult(string Destination, int Files, int Directories, int Symlinks, long Bytes);

/// <summary>imgtool copy-out: copies a file or a directory tree out of an image (virt-copy-out's role). Everything is
/// written under a temporary name beside the destination and renamed into place at the end, so a damaged file system
/// leaves nothing behind that looks complete. A directory that contains itself (a hostile loop) is an error.</summary>
public sealed class CopyOutOperation(ImageOpener opener)
{
    /// <summary>Deeper trees than this are taken as a loop through distinct inodes (Linux's PATH_MAX allows about 2048).</summary>
    public const int MaxDepth = 2048;

    public async ValueTask<CopyOutResult> RunAsync(GuestFileOptions options, string destination, CancellationToken cancellationToken = default)
    {
        GuestTarget target = GuestTarget.Parse(options.Target);
        await using IImage image = await InspectedImage.OpenAsync(opener, target.ImageFileName, options.Format, options.ForceShare, cancellationToken).ConfigureAwait(false);
        IGuestFileSystem fs = await GuestVolumes.OpenAsync(image, target, cancellationToken).ConfigureAwait(false);
        GuestEntry entry;
        try
        {
            entry = await GuestPath.ResolveAsync(fs, target.Path, followFinal: true, cancellationToken).ConfigureAwait(false);
        }
        catch (ImgToolException e) when (e.FileName is null)
        {
            throw ListOperation.Rename(e, target);
        }

        string name = entry.Name == "/" ? "root" : entry.Name;
        string final = Directory.Exists(destination) ? Path.Combine(destination, name) : destination;
        if (File.Exists(final) || Directory.Exists(final))
        {
            throw new InvalidOptionException($"{final} already exists");
        }

        string temporary = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(final))!, $".{Path.GetFileName(final)}.imgtool-{Environment.ProcessId}");
        var counts = new Counts();
        try
        {
            await CopyAsync(fs, entry, temporary, [], counts, target.Path, cancellationToken).ConfigureAwait(false);
            if (entry.Kind == GuestFileKind.Directory)
            {
                Directory.Move(temporary, final);
            }
            else
            {
                File.Move(temporary, final);
            }
        }
        catch (ImgToolException e) when (e.FileName is null)
        {
            Remove(temporary);
            throw ListOperation.Rename(e, target);
        }
        catch
        {
            Remove(temporary);
            throw;
        }

        return new CopyOutResult(final, counts.Files, counts.Directories, counts.Symlinks, counts.Bytes);
    }

    private static async ValueTask CopyAsync(IGuestFileSystem fs, GuestEntry entry, string hostPath, List<long> ancestors, Counts counts, string guestPath, CancellationToken cancellationToken)
    {
        switch (entry.Kind)
        {
            case GuestFileKind.File:
                await using (var output = new FileStream(hostPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                {
                    counts.Bytes += await CatOperation.CopyAsync(fs, entry, output, cancellationToken).ConfigureAwait(false);
                }

                SetTime(hostPath, entry);
                counts.Files++;
                break;
            case GuestFileKind.Symlink:
                File.CreateSymbolicLink(hostPath, await fs.ReadLinkAsync(entry, cancellationToken).ConfigureAwait(false));
                counts.Symlinks++;
                break;
            case GuestFileKind.Directory:
                if (ancestors.Contains(entry.Id) || ancestors.Count >= MaxDepth)
                {
                    throw new FilesystemCorruptException($"{guestPath}: directory loop (the directory contains itself)");
                }

                Directory.CreateDirectory(hostPath);
                counts.Directories++;
                ancestors.Add(entry.Id);
                foreach (GuestEntry child in await fs.ListAsync(entry, cancellationToken).ConfigureAwait(false))
                {
                    if (child.Name.Contains('/', StringComparison.Ordinal) || child.Name is "." or "..")
                    {
                        throw new FilesystemCorruptException($"{guestPath}: directory entry '{child.Name}' is not a valid file name");
                    }

                    await CopyAsync(fs, child, Path.Combine(hostPath, child.Name), ancestors, counts, guestPath.TrimEnd('/') + "/" + child.Name, cancellationToken).ConfigureAwait(false);
                }

                ancestors.RemoveAt(ancestors.Count - 1);
                SetTime(hostPath, entry);
                break;
            default:
                // Devices, FIFOs and sockets are not recreated (that needs root); they are skipped, as virt-copy-out does for special files.
                break;
        }
    }

    private static void SetTime(string hostPath, GuestEntry entry)
    {
        if (entry.ModifiedTime is { } time)
        {
            try
            {
                File.SetLastWriteTimeUtc(hostPath, time.UtcDateTime);
            }
            catch (ArgumentOutOfRangeException)
            {
                // A time the host cannot represent: the copy keeps the current one.
            }
        }
    }

    private static void Remove(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
            else
            {
                File.Delete(path);
            }
        }
        catch (IOException)
        {
        }
    }

    private sealed class Counts
    {
        public int Files { get; set; }

        public int Directories { get; set; }

        public int Symlinks { get; set; }

        public long Bytes { get; set; }
    }
}

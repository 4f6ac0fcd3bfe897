using ImgTool.Block.Devices;
using ImgTool.Inspect.Disk;
using ImgTool.Inspect.Files;
using ImgTool.Inspect.Inspection;

namespace ImgTool.Inspect.GuestFiles;

/// <summary>Finds the file system a <see cref="GuestTarget"/> means: the partition it names, else the whole disk when
/// it has no partition table, else the only partition with a readable file system.</summary>
public static class GuestVolumes
{
    public static async ValueTask<IGuestFileSystem> OpenAsync(IImage image, GuestTarget target, CancellationToken cancellationToken)
    {
        var disk = new DiskView(image, target.ImageFileName);
        var (table, volumes) = await DiskInspector.VolumesAsync(disk, cancellationToken).ConfigureAwait(false);
        Volume volume;
        if (target.Partition is { } number)
        {
            volume = volumes.FirstOrDefault(v => v.Partition?.Number == number)
                ?? throw new GuestPathException($"the image has no partition {number} ({Describe(volumes)})", target.ImageFileName);
        }
        else if (table is null)
        {
            volume = volumes[0];
        }
        else
        {
            List<Volume> readable = volumes.Where(v => GuestFileSystems.CanRead(v.Filesystem)).ToList();
            volume = readable.Count == 1
                ? readable[0]
                : throw new GuestPathException($"name a partition as IMAGE:N:/PATH ({Describe(volumes)})", target.ImageFileName);
        }

        if (volume.Error is { } error)
        {
            throw new FilesystemCorruptException($"partition {volume.Partition?.Number} {error}", target.ImageFileName);
        }

        try
        {
            return await GuestFileSystems.OpenAsync(DiskInspector.View(disk, volume), volume.Filesystem, cancellationToken).ConfigureAwait(false);
        }
        catch (Block.Errors.ImgToolException e) when (e.FileName is null)
        {
            throw e is GuestPathException ? new GuestPathException(e.Message, target.ImageFileName) : new FilesystemCorruptException(e.Message, target.ImageFileName);
        }
    }

    private static string Describe(List<Volume> volumes) =>
        volumes.Count == 0 ? "it has none" : "partitions: " + string.Join(", ", volumes.Where(v => v.Partition is not null).Select(v => $"{v.Partition!.Number} {v.Filesystem?.Type ?? "unknown"}"));
}

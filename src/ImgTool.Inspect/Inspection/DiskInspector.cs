using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Inspect.Bootloaders;
using ImgTool.Inspect.Disk;
using ImgTool.Inspect.Files;
using ImgTool.Inspect.Filesystems;
using ImgTool.Inspect.OsRelease;
using ImgTool.Inspect.Partitions;

namespace ImgTool.Inspect.Inspection;

/// <summary>Looks at a disk as a whole: its partition table, each volume's file system, boot loaders and OS.</summary>
public static class DiskInspector
{
    /// <summary>The volumes of a disk, each probed: the partitions of its table, or the whole disk.</summary>
    public static async ValueTask<(PartitionTable? Table, List<Volume> Volumes)> VolumesAsync(DiskView disk, CancellationToken cancellationToken)
    {
        PartitionTable? table = await PartitionTableReader.ReadAsync(disk, cancellationToken).ConfigureAwait(false);
        var volumes = new List<Volume>();
        if (table is null)
        {
            volumes.Add(await ProbeAsync(disk, null, cancellationToken).ConfigureAwait(false));
            return (table, volumes);
        }

        foreach (Partition partition in table.Partitions)
        {
            volumes.Add(partition.IsContainer
                ? new Volume(partition, partition.StartBytes, partition.SizeBytes, null)
                : await ProbeAsync(disk, partition, cancellationToken).ConfigureAwait(false));
        }

        return (table, volumes);
    }

    public static DiskView View(DiskView disk, Volume volume) =>
        volume.Partition is null ? disk : disk.Slice(volume.StartBytes, volume.SizeBytes, $"partition {volume.Partition.Number}");

    public static async ValueTask<InspectResult> InspectAsync(IImage image, string fileName, CancellationToken cancellationToken)
    {
        var disk = new DiskView(image, fileName);
        var (table, volumes) = await VolumesAsync(disk, cancellationToken).ConfigureAwait(false);
        var warnings = new List<string>(table?.Warnings ?? []);
        foreach (Volume v in volumes)
        {
            if (v.Partition?.Problem is { } problem)
            {
                warnings.Add($"partition {v.Partition.Number} {problem}");
            }
        }

        var loaders = new List<BootloaderInfo>();
        var systems = new List<OsHint>();
        if (disk.LengthBytes >= 512)
        {
            byte[] mbr = await disk.ReadBytesAsync(0, 512, "MBR", cancellationToken).ConfigureAwait(false);
            if (table is not null && BootCodeSignatures.MbrLoader(mbr) is { } mbrLoader)
            {
                loaders.Add(new BootloaderInfo(mbrLoader, "MBR"));
            }
        }

        foreach (Volume volume in volumes)
        {
            if (volume.Filesystem is null)
            {
                continue;
            }

            DiskView view = View(disk, volume);
            string where = volume.Partition is null ? "disk" : $"partition {volume.Partition.Number}";
            byte[] boot = await view.ReadHeadAsync(0, 512, cancellationToken).ConfigureAwait(false);
            if (volume.Filesystem.Type is "vfat" or "ntfs" or "exfat" && BootCodeSignatures.VolumeBootLoader(boot) is { } vbrLoader)
            {
                loaders.Add(new BootloaderInfo(vbrLoader, $"{where} boot sector"));
            }

            if (!GuestFileSystems.CanRead(volume.Filesystem))
            {
                continue;
            }

            try
            {
                IGuestFileSystem fs = new ListingCache(await GuestFileSystems.OpenAsync(view, volume.Filesystem, cancellationToken).ConfigureAwait(false));
                foreach (var (loader, marker, config) in await BootFiles.FindAsync(fs, cancellationToken).ConfigureAwait(false))
                {
                    loaders.Add(new BootloaderInfo(loader, $"{where}: {marker}", config));
                }

                if (await OsReleaseReader.ReadAsync(fs, volume.Partition?.Number, cancellationToken).ConfigureAwait(false) is { } os)
                {
                    systems.Add(os);
                }
            }
            catch (ImgToolException e)
            {
                warnings.Add($"{where}: {e.Message}");
            }
        }

        if (volumes.Count > 0 && volumes.All(v => v.Filesystem is null && v.Partition is null))
        {
            warnings.Add("no partition table and no file system found");
        }

        return new InspectResult(fileName, image.FormatName, image.SizeBytes, table, volumes, loaders, systems, warnings);
    }

    private static async ValueTask<Volume> ProbeAsync(DiskView disk, Partition? partition, CancellationToken cancellationToken)
    {
        long start = partition?.StartBytes ?? 0;
        long size = partition?.SizeBytes ?? disk.LengthBytes;
        if (partition is not null && !disk.Contains(start, 1))
        {
            return new Volume(partition, start, size, null, "starts past the end of the disk");
        }

        DiskView view = partition is null ? disk : disk.Slice(start, size, $"partition {partition.Number}");
        try
        {
            return new Volume(partition, start, size, await FilesystemProber.ProbeAsync(view, cancellationToken).ConfigureAwait(false));
        }
        catch (ImgToolException e)
        {
            return new Volume(partition, start, size, null, e.Message);
        }
    }
}

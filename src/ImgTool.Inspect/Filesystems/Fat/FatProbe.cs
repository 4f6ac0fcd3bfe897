using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Filesystems.Fat;

/// <summary>FAT12/16/32 (blkid's "vfat"): the label is the volume-label entry of the root directory when there is
/// one (what mlabel and Windows change), else the boot sector's; UUID is the volume serial.</summary>
internal sealed class FatProbe : IFilesystemProbe
{
    public async ValueTask<FilesystemInfo?> ProbeAsync(ReadOnlyMemory<byte> head, DiskView volume, CancellationToken cancellationToken)
    {
        if (FatBootSector.TryRead(head.Span[..512]) is not { } boot)
        {
            return null;
        }

        string? label = boot.BootLabel;
        try
        {
            var fs = new FatFileSystem(volume, boot);
            label = await fs.ReadVolumeLabelAsync(cancellationToken).ConfigureAwait(false) ?? label;
        }
        catch (FilesystemCorruptException)
        {
            // The boot sector's label stands when the root directory cannot be read.
        }

        return new FilesystemInfo(
            "vfat",
            "filesystem",
            label,
            Text.Serial32(boot.VolumeId),
            boot.Kind.ToString().ToUpperInvariant(),
            boot.BytesPerSector,
            boot.TotalSectors * boot.BytesPerSector);
    }
}

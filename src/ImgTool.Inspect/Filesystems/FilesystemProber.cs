using ImgTool.Inspect.Disk;
using ImgTool.Inspect.Filesystems.Btrfs;
using ImgTool.Inspect.Filesystems.Ext;
using ImgTool.Inspect.Filesystems.ExFat;
using ImgTool.Inspect.Filesystems.Fat;
using ImgTool.Inspect.Filesystems.Iso9660;
using ImgTool.Inspect.Filesystems.Luks;
using ImgTool.Inspect.Filesystems.Lvm;
using ImgTool.Inspect.Filesystems.Ntfs;
using ImgTool.Inspect.Filesystems.Swap;
using ImgTool.Inspect.Filesystems.Xfs;

namespace ImgTool.Inspect.Filesystems;

/// <summary>Tries every probe on a volume, in an order where the more specific magic goes first
/// (a LUKS or LVM header before the file system it may have replaced; NTFS and exFAT before FAT,
/// whose boot sectors they resemble).</summary>
public static class FilesystemProber
{
    /// <summary>Enough for every superblock probed: btrfs's at 64 KiB and swap's signature at the end of a 64 KiB page.</summary>
    public const int HeadBytes = 0x11000;

    private static readonly IFilesystemProbe[] Probes =
    [
        new LuksProbe(),
        new LvmProbe(),
        new Iso9660Probe(),
        new XfsProbe(),
        new BtrfsProbe(),
        new ExtProbe(),
        new NtfsProbe(),
        new ExFatProbe(),
        new FatProbe(),
        new SwapProbe(),
    ];

    public static async ValueTask<FilesystemInfo?> ProbeAsync(DiskView volume, CancellationToken cancellationToken)
    {
        byte[] head = await volume.ReadHeadAsync(0, HeadBytes, cancellationToken).ConfigureAwait(false);
        foreach (IFilesystemProbe probe in Probes)
        {
            if (await probe.ProbeAsync(head, volume, cancellationToken).ConfigureAwait(false) is { } found)
            {
                return found;
            }
        }

        return null;
    }
}

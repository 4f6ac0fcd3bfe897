using ImgTool.Inspect.Disk;
using ImgTool.Inspect.Filesystems;
using ImgTool.Inspect.Filesystems.Ext;
using ImgTool.Inspect.Filesystems.Fat;

namespace ImgTool.Inspect.Files;

/// <summary>Opens the file systems whose files imgtool can read.</summary>
public static class GuestFileSystems
{
    public static bool CanRead(FilesystemInfo? info) => info?.Type is "ext2" or "ext3" or "ext4" or "vfat";

    public static async ValueTask<IGuestFileSystem> OpenAsync(DiskView volume, FilesystemInfo? info, CancellationToken cancellationToken)
    {
        switch (info?.Type)
        {
            case "ext2" or "ext3" or "ext4":
                return await ExtFileSystem.OpenAsync(volume, info.Type, cancellationToken).ConfigureAwait(false);
            case "vfat":
                byte[] boot = await volume.ReadBytesAsync(0, 512, "FAT boot sector", cancellationToken).ConfigureAwait(false);
                return FatFileSystem.TryOpen(volume, boot) ?? throw new FilesystemCorruptException($"{volume.Name}: the FAT boot sector is not valid");
            case null:
                throw new GuestPathException($"{volume.Name} holds no file system imgtool recognises");
            default:
                throw new GuestPathException($"{volume.Name} holds {info.Type}; imgtool reads files from ext2/3/4 and FAT only");
        }
    }
}

namespace ImgTool.Inspect.Filesystems;

/// <summary>What a probe found in a partition (or on the whole disk), named as `blkid -p` names it.</summary>
/// <param name="Type">blkid's TYPE: ext2, ext3, ext4, xfs, btrfs, vfat, exfat, ntfs, iso9660, swap, LVM2_member, crypto_LUKS.</param>
/// <param name="Usage">blkid's USAGE: filesystem, other (swap), raid (LVM), crypto (LUKS).</param>
/// <param name="Version">blkid's VERSION (FAT12/16/32, the LUKS version, the ext revision), when it has one.</param>
/// <param name="SizeBytes">The size the file system's own header gives itself, when it does.</param>
/// <param name="Details">What blkid does not say but the header does (the LVM volume group, the NTFS version).</param>
public sealed record FilesystemInfo(
    string Type,
    string Usage,
    string? Label = null,
    string? Uuid = null,
    string? Version = null,
    int? BlockSize = null,
    long? SizeBytes = null,
    string? UuidSub = null,
    IReadOnlyList<KeyValuePair<string, string>>? Details = null);

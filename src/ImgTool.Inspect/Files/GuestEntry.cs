namespace ImgTool.Inspect.Files;

public enum GuestFileKind
{
    File,
    Directory,
    Symlink,
    Other,
}

/// <summary>One directory entry of a file system inside an image, with what `ls -l` shows.</summary>
/// <param name="Id">The file system's handle for the file: the inode number (ext), the first cluster (FAT).</param>
/// <param name="Mode">The POSIX mode bits, type included (FAT: made up from its attributes, as Linux's vfat does).</param>
/// <param name="Inode">What `ls -i` would show (ext: the inode; FAT: the first cluster).</param>
public sealed record GuestEntry(
    string Name,
    GuestFileKind Kind,
    long SizeBytes,
    uint Mode,
    uint Uid,
    uint Gid,
    DateTimeOffset? ModifiedTime,
    long Id,
    uint LinkCount = 1);

/// <summary>A file system inside an image that imgtool can read files from (ext2/3/4, FAT12/16/32).</summary>
public interface IGuestFileSystem
{
    /// <summary>The file system's name as blkid gives it (ext4, vfat).</summary>
    string Type { get; }

    GuestEntry Root { get; }

    /// <summary>The entries of a directory, "." and ".." left out, in on-disk order.</summary>
    ValueTask<IReadOnlyList<GuestEntry>> ListAsync(GuestEntry directory, CancellationToken cancellationToken);

    /// <summary>Reads file content at <paramref name="offsetBytes"/>; returns the bytes read (short only at the end of the file).</summary>
    ValueTask<int> ReadAsync(GuestEntry file, long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken);

    ValueTask<string> ReadLinkAsync(GuestEntry symlink, CancellationToken cancellationToken);
}

using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Filesystems;

/// <summary>Recognises one kind of file system from its superblock, as one of libblkid's probers does.</summary>
internal interface IFilesystemProbe
{
    /// <param name="head">The first <see cref="FilesystemProber.HeadBytes"/> bytes of the volume (zeros past its end).</param>
    /// <param name="volume">The volume, for the probes that must read further (labels in a root directory or MFT record).</param>
    ValueTask<FilesystemInfo?> ProbeAsync(ReadOnlyMemory<byte> head, DiskView volume, CancellationToken cancellationToken);
}

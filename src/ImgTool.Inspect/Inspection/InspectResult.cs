using ImgTool.Inspect.Bootloaders;
using ImgTool.Inspect.Filesystems;
using ImgTool.Inspect.OsRelease;
using ImgTool.Inspect.Partitions;

namespace ImgTool.Inspect.Inspection;

/// <summary>One volume of the disk: a partition, or the whole disk when it holds a file system without a table.</summary>
/// <param name="Partition">The partition, or null for the whole disk.</param>
/// <param name="Error">Why the volume could not be probed (it lies past the end of the disk, its superblock is unreadable).</param>
public sealed record Volume(Partition? Partition, long StartBytes, long SizeBytes, FilesystemInfo? Filesystem, string? Error = null);

public sealed record InspectResult(
    string FileName,
    string Format,
    long VirtualSizeBytes,
    PartitionTable? Table,
    IReadOnlyList<Volume> Volumes,
    IReadOnlyList<BootloaderInfo> Bootloaders,
    IReadOnlyList<OsHint> OperatingSystems,
    IReadOnlyList<string> Warnings);

using ImgTool.Block.Host;
using ImgTool.Block.Info;

namespace ImgTool.Block.Devices;

/// <summary>An opened image: a block device plus what `info` reports about it.</summary>
public interface IImage : IBlockDevice
{
    /// <summary>The format's name as qemu-img spells it (raw, qcow2, vmdk, vpc, vhdx, ...).</summary>
    string FormatName { get; }

    /// <summary>The host file that holds the image (its first file, for multi-file formats).</summary>
    IHostFile HostFile { get; }

    /// <summary>Cluster size, dirty flag and the format-specific block of `info`.</summary>
    ImageDetails Details { get; }
}

/// <summary>An image that may sit on a backing file (a delta image).</summary>
public interface IBackingChain
{
    /// <summary>The backing file name exactly as the image stores it, or null.</summary>
    string? BackingFileName { get; }

    /// <summary>The backing format the image names, or null when it names none.</summary>
    string? BackingFormat { get; }

    /// <summary>The opened backing device, or null when there is none or it was not opened.</summary>
    IBlockDevice? Backing { get; }
}

/// <summary>An image that can look for inconsistencies in its own metadata and repair them.</summary>
public interface ICheckable
{
    ValueTask<CheckReport> CheckAsync(CheckRepair repair, CancellationToken cancellationToken = default);
}

/// <summary>An image whose virtual size can change.</summary>
public interface IResizable
{
    ValueTask ResizeAsync(long newSizeBytes, CancellationToken cancellationToken = default);
}

[Flags]
public enum CheckRepair
{
    None = 0,
    Leaks = 1,
    Errors = 2,
    All = Leaks | Errors,
}

/// <summary>One internal snapshot, as `snapshot -l` lists it (QEMU's QEMUSnapshotInfo).</summary>
public sealed record SnapshotInfo(string Id, string Name, long VmStateSizeBytes, DateTimeOffset Date, long VmClockNanoseconds, long? Icount);

/// <summary>An image that keeps internal snapshots (qcow2): list, create, revert to, delete.</summary>
public interface ISnapshots
{
    ValueTask<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync(CancellationToken cancellationToken = default);

    ValueTask CreateSnapshotAsync(string name, DateTimeOffset date, CancellationToken cancellationToken = default);

    /// <summary>Makes the disk read as it did when the snapshot was taken. <paramref name="idOrName"/> is matched against IDs first, then names.</summary>
    ValueTask ApplySnapshotAsync(string idOrName, CancellationToken cancellationToken = default);

    ValueTask DeleteSnapshotAsync(string idOrName, CancellationToken cancellationToken = default);

    /// <summary>
    /// Makes an image opened read-only read as the snapshot does, without writing anything (QEMU's
    /// bdrv_snapshot_load_tmp, for convert -l). <paramref name="idOrName"/> is matched against IDs first, then
    /// names; or <paramref name="id"/> and/or <paramref name="name"/> must both match.
    /// </summary>
    ValueTask LoadSnapshotReadOnlyAsync(string? idOrName, string? id, string? name, CancellationToken cancellationToken = default);
}

/// <summary>An image of a format that can encrypt guest data (qcow2 with LUKS, a luks container). Opened without
/// its key (info), an encrypted image shows its metadata but cannot read or write guest data.</summary>
public interface IEncrypted
{
    /// <summary>The encryption format as qemu-img names it ("luks"), or null when this image is not encrypted.</summary>
    string? EncryptionFormat { get; }

    /// <summary>Whether guest data can be read and written: the image is not encrypted, or its key unlocked a key slot.</summary>
    bool IsUnlocked { get; }
}

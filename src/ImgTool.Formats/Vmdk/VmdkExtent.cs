using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vmdk;

internal enum VmdkRunKind
{
    Data,
    Zero,
    Unallocated,
}

/// <summary>What an extent holds from an offset on: its kind, its length and where the data is in the extent file
/// (for a compressed grain, the offset of its grain marker).</summary>
internal readonly record struct VmdkRun(VmdkRunKind Kind, long LengthBytes, long HostOffsetBytes, bool Compressed);

/// <summary>Reads the virtual disk's backing (or zeros without one) at a virtual offset, for copy-on-write.</summary>
internal delegate ValueTask BackingReader(long virtualOffsetBytes, Memory<byte> buffer, CancellationToken cancellationToken);

/// <summary>One extent of a VMDK: a flat file range or a sparse extent, covering [StartBytes, StartBytes + SizeBytes) of the disk.</summary>
internal abstract class VmdkExtent(IHostFile file, long startBytes, long sizeBytes, string type, bool ownsFile) : IDisposable
{
    public IHostFile File { get; } = file;

    public long StartBytes { get; } = startBytes;

    public long SizeBytes { get; } = sizeBytes;

    /// <summary>The extent type as the descriptor names it (FLAT, SPARSE, VMFS, ...), or "" for a monolithic file, as qemu-img shows it.</summary>
    public string Type { get; } = type;

    public bool OwnsFile { get; } = ownsFile;

    /// <summary>The descriptor's access mode for the extent: RW, RDONLY (writes refused) or NOACCESS (reads and
    /// writes refused). A monolithic file is RW.</summary>
    public string Access { get; set; } = "RW";

    /// <summary>The extent's file as `info` names it, or null for an extent that has none (ZERO).</summary>
    public virtual string? FileName => File.Path;

    public abstract bool IsFlat { get; }

    public abstract long GrainBytes { get; }

    public abstract bool IsCompressed { get; }

    public abstract ValueTask<VmdkRun> MapAsync(long offsetBytes, long maxLengthBytes, CancellationToken cancellationToken);

    /// <summary>Reads data of a run that <see cref="MapAsync"/> returned at <paramref name="offsetBytes"/>.</summary>
    public abstract ValueTask ReadDataAsync(long offsetBytes, Memory<byte> buffer, VmdkRun run, CancellationToken cancellationToken);

    public abstract ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, BackingReader backing, CancellationToken cancellationToken);

    public abstract ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, bool hasBacking, BackingReader backing, CancellationToken cancellationToken);

    public virtual ValueTask FlushAsync(CancellationToken cancellationToken) => File.FlushAsync(cancellationToken);

    public virtual ValueTask CheckAsync(List<CheckFinding> findings, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public virtual void Dispose()
    {
        if (OwnsFile)
        {
            File.Dispose();
        }
    }
}

/// <summary>A FLAT or VMFS extent: the disk bytes lie in the file as they are, from a sector offset on.</summary>
internal sealed class VmdkFlatExtent(IHostFile file, long startBytes, long sizeBytes, string type, long flatOffsetBytes, bool ownsFile)
    : VmdkExtent(file, startBytes, sizeBytes, type, ownsFile)
{
    public override bool IsFlat => true;

    public override long GrainBytes => 0;

    public override bool IsCompressed => false;

    /// <summary>Holes in the extent file read as zeros and say so, so convert and map skip them.</summary>
    public override ValueTask<VmdkRun> MapAsync(long offsetBytes, long maxLengthBytes, CancellationToken cancellationToken)
    {
        long host = flatOffsetBytes + offsetBytes;
        HostExtent extent = File.GetExtent(host, maxLengthBytes);
        return ValueTask.FromResult(new VmdkRun(extent.IsData ? VmdkRunKind.Data : VmdkRunKind.Zero, extent.LengthBytes, host, false));
    }

    public override ValueTask ReadDataAsync(long offsetBytes, Memory<byte> buffer, VmdkRun run, CancellationToken cancellationToken) =>
        File.ReadZeroFilledAsync(flatOffsetBytes + offsetBytes, buffer, cancellationToken);

    public override ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, BackingReader backing, CancellationToken cancellationToken) =>
        File.WriteAsync(flatOffsetBytes + offsetBytes, data, cancellationToken);

    public override ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, bool hasBacking, BackingReader backing, CancellationToken cancellationToken)
    {
        if (flags.HasFlag(BlockZeroFlags.MayUnmap))
        {
            File.PunchHole(flatOffsetBytes + offsetBytes, lengthBytes);
        }
        else
        {
            File.ZeroRange(flatOffsetBytes + offsetBytes, lengthBytes);
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// A ZERO extent (VMware "Virtual Disk Format 1.1", "Extent Descriptions": "ZERO" has no file): it reads as zeros.
/// Writing zeros to it succeeds, since the disk already reads so; any other data has nowhere to go and is refused.
/// </summary>
internal sealed class VmdkZeroExtent(IHostFile descriptorFile, long startBytes, long sizeBytes)
    : VmdkExtent(descriptorFile, startBytes, sizeBytes, "ZERO", ownsFile: false)
{
    public override bool IsFlat => true;

    public override long GrainBytes => 0;

    public override bool IsCompressed => false;

    public override string? FileName => null;

    public override ValueTask<VmdkRun> MapAsync(long offsetBytes, long maxLengthBytes, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new VmdkRun(VmdkRunKind.Zero, maxLengthBytes, -1, false));

    public override ValueTask ReadDataAsync(long offsetBytes, Memory<byte> buffer, VmdkRun run, CancellationToken cancellationToken)
    {
        buffer.Span.Clear();
        return ValueTask.CompletedTask;
    }

    public override ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, BackingReader backing, CancellationToken cancellationToken) =>
        data.Span.ContainsAnyExcept((byte)0)
            ? throw new UnsupportedFeatureException(
                $"cannot write data to the ZERO extent covering [{StartBytes}, {StartBytes + SizeBytes}) of the disk: it has no file and reads as zeros (only zeros may be written there)",
                File.Path)
            : ValueTask.CompletedTask;

    public override ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, bool hasBacking, BackingReader backing, CancellationToken cancellationToken) =>
        ValueTask.CompletedTask;

    public override ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
}

/// <summary>
/// A NOACCESS extent: part of the disk's address space (later extents keep their places), but neither read nor
/// written; its file is not opened. QEMU 7.2 drops such extents and shifts every later one; we do not.
/// </summary>
internal sealed class VmdkNoAccessExtent(IHostFile descriptorFile, long startBytes, long sizeBytes, string type, string extentFileName)
    : VmdkExtent(descriptorFile, startBytes, sizeBytes, type, ownsFile: false)
{
    public override bool IsFlat => true;

    public override long GrainBytes => 0;

    public override bool IsCompressed => false;

    public override string? FileName => extentFileName.Length == 0 ? null : extentFileName;

    public override ValueTask<VmdkRun> MapAsync(long offsetBytes, long maxLengthBytes, CancellationToken cancellationToken) => throw Refused("read");

    public override ValueTask ReadDataAsync(long offsetBytes, Memory<byte> buffer, VmdkRun run, CancellationToken cancellationToken) => throw Refused("read");

    public override ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, BackingReader backing, CancellationToken cancellationToken) => throw Refused("written");

    public override ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, bool hasBacking, BackingReader backing, CancellationToken cancellationToken) =>
        throw Refused("written");

    public override ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public UnsupportedFeatureException Refused(string what) => new(
        $"the extent covering [{StartBytes}, {StartBytes + SizeBytes}) of the disk{(extentFileName.Length == 0 ? string.Empty : $" ('{extentFileName}')")} is NOACCESS: it cannot be {what}",
        File.Path);
}

namespace ImgTool.Block.Devices;

/// <summary>
/// A device that can store whole allocation units (qcow2 clusters, VMDK grains) compressed, as
/// `convert -c` needs. Compression is split from writing so that convert can compress on all
/// cores while the device still lays units out in order.
/// </summary>
public interface ICompressedWrites
{
    /// <summary>The unit that is compressed as a whole (cluster or grain size), in bytes.</summary>
    int CompressionUnitBytes { get; }

    /// <summary>The largest output <see cref="Compress"/> may produce for one unit (the destination size to provide).</summary>
    int MaxCompressedBytes { get; }

    /// <summary>
    /// Compresses one unit (exactly <see cref="CompressionUnitBytes"/> long; the last unit of a disk is
    /// zero-padded by the caller). Pure and thread-safe: no I/O, no shared state. Returns the compressed
    /// length, or -1 when compression does not save space and the unit should be stored as it is.
    /// </summary>
    int Compress(ReadOnlySpan<byte> unit, Span<byte> destination);

    /// <summary>
    /// Stores a unit at a unit-aligned offset. <paramref name="compressed"/> is what <see cref="Compress"/>
    /// produced, or the raw unit when it returned -1 (<paramref name="isCompressed"/> false). Callers
    /// issue these one at a time, in increasing offset order.
    /// </summary>
    ValueTask WriteCompressedAsync(long offsetBytes, ReadOnlyMemory<byte> compressed, bool isCompressed, CancellationToken cancellationToken = default);
}

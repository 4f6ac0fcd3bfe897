using ImgTool.Block.Devices;

namespace ImgTool.Machine;

/// <summary>
/// The guest's disk as the boot report counts it: every request passes through to the device underneath,
/// and the sectors the guest read and wrote are added up here, whichever disk controller made the request
/// (the firmware's INT 13h and the guest's own driver both reach the disk through the virtio-blk device).
/// </summary>
/// <remarks>
/// Counts are in 512-byte sectors (the virtio-blk sector, virtio 1.x section 5.2.6, and the BIOS one),
/// rounded up for a request that is not a whole number of them. Write-zeroes requests count as written.
/// Only requests that completed are counted: a failed one moved no data the guest can use.
/// The wrapper does not own the device: disposing it leaves the device open for its owner to dispose.
/// </remarks>
internal sealed class CountingBlockDevice(IBlockDevice device) : IBlockDevice
{
    public const int SectorBytes = 512;

    private long _sectorsRead;
    private long _sectorsWritten;

    /// <summary>Sectors read so far; safe to read while requests are in flight.</summary>
    public long SectorsRead => Interlocked.Read(ref _sectorsRead);

    /// <summary>Sectors written (data or zeroes) so far; safe to read while requests are in flight.</summary>
    public long SectorsWritten => Interlocked.Read(ref _sectorsWritten);

    public long SizeBytes => device.SizeBytes;

    public int Alignment => device.Alignment;

    public bool IsReadOnly => device.IsReadOnly;

    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await device.ReadAsync(offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref _sectorsRead, Sectors(buffer.Length));
    }

    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await device.WriteAsync(offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref _sectorsWritten, Sectors(buffer.Length));
    }

    public async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        await device.WriteZeroesAsync(offsetBytes, lengthBytes, flags, cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref _sectorsWritten, Sectors(lengthBytes));
    }

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        device.DiscardAsync(offsetBytes, lengthBytes, cancellationToken);

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => device.FlushAsync(cancellationToken);

    public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        device.GetStatusAsync(offsetBytes, lengthBytes, cancellationToken);

    /// <summary>Nothing to release: the device belongs to the caller.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>The whole sectors a request of this many bytes touches.</summary>
    private static long Sectors(long lengthBytes) => (lengthBytes + SectorBytes - 1) / SectorBytes;
}

namespace ImgTool.Block.Devices;

/// <summary>
/// The byte-addressed contract every image format implements (QEMU's bdrv_co_preadv, pwritev,
/// pwrite_zeroes, pdiscard and block_status, in C# idiom).
/// </summary>
/// <remarks>
/// Callers keep every request inside [0, SizeBytes). Offsets and lengths need not be aligned:
/// a driver whose format has a larger granularity does the read-modify-write itself.
/// Reads of ranges the image does not allocate are answered from the backing device, or zeros
/// when there is none. Implementations must allow concurrent requests.
/// </remarks>
public interface IBlockDevice : IAsyncDisposable
{
    /// <summary>Virtual disk size in bytes.</summary>
    long SizeBytes { get; }

    /// <summary>The request alignment the device prefers (1 when any byte offset is as good as another).</summary>
    int Alignment { get; }

    bool IsReadOnly { get; }

    ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default);

    ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>Makes the range read as zeros, without writing zero data where the format can say "zero".</summary>
    ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default);

    /// <summary>Hints that the range is no longer needed. Its content afterwards is unspecified
    /// (zeros or backing data, depending on the format), as in QEMU.</summary>
    ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default);

    ValueTask FlushAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Describes the extent that starts at <paramref name="offsetBytes"/>: its kind and how far it
    /// reaches, never beyond <paramref name="lengthBytes"/> and never less than one byte.
    /// Depth is always 0 here; <see cref="BackingChainStatus"/> walks the chain.
    /// </summary>
    ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default);
}

[Flags]
public enum BlockZeroFlags
{
    None = 0,

    /// <summary>The device may deallocate the range (punch a hole) instead of writing zeros.</summary>
    MayUnmap = 1,
}

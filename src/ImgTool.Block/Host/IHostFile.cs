namespace ImgTool.Block.Host;

/// <summary>
/// The protocol layer under a format: positioned I/O on one host file plus the sparse-file
/// calls formats use for block status, zeroing and preallocation. Safe for concurrent requests.
/// </summary>
public interface IHostFile : IDisposable
{
    /// <summary>The path as the user gave it (used in messages and to resolve relative names).</summary>
    string Path { get; }

    bool IsReadOnly { get; }

    /// <summary>Current length of the file in bytes.</summary>
    long Length { get; }

    /// <summary>Bytes the file occupies on the host (allocated blocks), for `info`'s actual-size.</summary>
    long AllocatedBytes { get; }

    /// <summary>Alignment the file needs for offsets, lengths and buffers (512 or more with cache=none, else 1).
    /// Implementations bounce unaligned requests themselves, so callers may ignore it at a cost.</summary>
    int Alignment { get; }

    /// <summary>Reads up to buffer.Length bytes; returns fewer only at end of file.</summary>
    ValueTask<int> ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>Writes the whole buffer, extending the file when it reaches past its end.</summary>
    ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default);

    void SetLength(long lengthBytes);

    /// <summary>Makes written data durable (fdatasync), as the cache mode allows.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken = default);

    /// <summary>Whether the range at <paramref name="offsetBytes"/> is data or a hole, and how far that reaches
    /// (at most <paramref name="maxLengthBytes"/>). Beyond the end of the file is a hole.</summary>
    HostExtent GetExtent(long offsetBytes, long maxLengthBytes);

    /// <summary>Deallocates the range; it reads as zeros afterwards. The file length does not change.</summary>
    void PunchHole(long offsetBytes, long lengthBytes);

    /// <summary>Makes the range read as zeros, keeping it allocated where the host can; extends the file if needed.</summary>
    void ZeroRange(long offsetBytes, long lengthBytes);

    /// <summary>Allocates the range (fallocate), writing zeros when <paramref name="writeZeros"/> (preallocation=full).</summary>
    void Preallocate(long offsetBytes, long lengthBytes, bool writeZeros);
}

/// <summary>A run of the host file that is all data or all hole.</summary>
public readonly record struct HostExtent(bool IsData, long LengthBytes);

/// <summary>QEMU's cache modes for the host file.</summary>
public enum CacheMode
{
    /// <summary>Page cache; flush requests reach the disk (QEMU's default for most commands).</summary>
    Writeback,

    /// <summary>Every write is made durable before it completes.</summary>
    Writethrough,

    /// <summary>O_DIRECT: bypass the page cache, aligned buffers; flush requests reach the disk.</summary>
    None,

    /// <summary>Page cache, flush requests ignored (qemu-img convert's default for its target).</summary>
    Unsafe,

    /// <summary>O_DIRECT and every write made durable before it completes (QEMU's directsync).</summary>
    DirectSync,
}

/// <summary>How an open takes QEMU-compatible image locks.</summary>
public enum HostLockMode
{
    /// <summary>Shared lock for read-only opens, exclusive write lock otherwise.</summary>
    Auto,

    /// <summary>No lock at all (qemu-img -U / force-share): read-only opens only.</summary>
    None,
}

public sealed record HostOpenOptions(bool ReadOnly, CacheMode Cache = CacheMode.Writeback, HostLockMode Lock = HostLockMode.Auto);

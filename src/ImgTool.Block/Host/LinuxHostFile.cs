using System.Buffers;
using System.Runtime.InteropServices;
using ImgTool.Block.Errors;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;

namespace ImgTool.Block.Host;

/// <summary>A host file on Linux: pread/pwrite through RandomAccess, sparse calls through libc.</summary>
public sealed class LinuxHostFile : IHostFile
{
    /// <summary>O_DIRECT needs offsets, lengths and buffers aligned to the logical block size;
    /// 4096 satisfies every device in use.</summary>
    private const int DirectAlignment = 4096;

    private readonly SafeFileHandle _handle;
    private readonly CacheMode _cache;
    private readonly SemaphoreSlim _directRmw = new(1, 1);

    private LinuxHostFile(SafeFileHandle handle, string path, bool readOnly, CacheMode cache)
    {
        _handle = handle;
        Path = path;
        IsReadOnly = readOnly;
        _cache = cache;
    }

    public string Path { get; }

    /// <summary>Whether the mode bypasses the host page cache (QEMU's cache.direct=on).</summary>
    private static bool IsDirect(CacheMode cache) => cache is CacheMode.None or CacheMode.DirectSync;

    public bool IsReadOnly { get; }

    public long Length => RandomAccess.GetLength(_handle);

    public long AllocatedBytes => NativeFile.AllocatedBytes(_handle);

    public int Alignment => IsDirect(_cache) ? DirectAlignment : 1;

    /// <summary>Opens an existing file, taking QEMU-compatible locks unless told not to.</summary>
    public static LinuxHostFile Open(string path, HostOpenOptions options)
    {
        if (!options.ReadOnly && options.Lock == HostLockMode.None)
        {
            throw new InvalidOptionException("force-share (-U) is only allowed for read-only opens", path);
        }

        int flags = options.ReadOnly ? LibC.O_RDONLY : LibC.O_RDWR;
        if (IsDirect(options.Cache))
        {
            flags |= LibC.O_DIRECT;
        }

        SafeFileHandle handle = NativeFile.Open(path, flags);
        try
        {
            if (options.Lock == HostLockMode.Auto)
            {
                ImageLock.Acquire(handle, path, write: !options.ReadOnly);
            }

            return new LinuxHostFile(handle, path, options.ReadOnly, options.Cache);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates the file, or empties an existing one, holding the write lock before it truncates,
    /// so an image another process has open is never destroyed.
    /// </summary>
    public static LinuxHostFile Create(string path, CacheMode cache = CacheMode.Writeback)
    {
        int flags = LibC.O_RDWR | LibC.O_CREAT;
        if (IsDirect(cache))
        {
            flags |= LibC.O_DIRECT;
        }

        SafeFileHandle handle = NativeFile.Open(path, flags);
        try
        {
            ImageLock.Acquire(handle, path, write: true);
            RandomAccess.SetLength(handle, 0);
            return new LinuxHostFile(handle, path, false, cache);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private const int InlineReadBytes = 64 * 1024;

    public ValueTask<int> ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            if (IsDirect(_cache))
            {
                return ValueTask.FromResult(DirectRead(offsetBytes, buffer.Span));
            }

            // Small reads (metadata: headers, tables) are served inline: from the page cache they take
            // microseconds, less than the hop to a thread-pool thread that an asynchronous read costs.
            if (buffer.Length <= InlineReadBytes)
            {
                return ValueTask.FromResult(RandomAccess.Read(_handle, buffer.Span, offsetBytes));
            }

            return RandomAccess.ReadAsync(_handle, buffer, offsetBytes, cancellationToken);
        }
        catch (IOException e)
        {
            throw new HostIOException($"read failed at offset {offsetBytes}: {e.Message}", Path, e);
        }
    }

    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        try
        {
            if (IsDirect(_cache))
            {
                await DirectWriteAsync(offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await RandomAccess.WriteAsync(_handle, buffer, offsetBytes, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (IOException e)
        {
            throw new HostIOException($"write failed at offset {offsetBytes}: {e.Message}", Path, e);
        }

        if (_cache is CacheMode.Writethrough or CacheMode.DirectSync)
        {
            NativeFile.DataSync(_handle, Path);
        }
    }

    public void SetLength(long lengthBytes)
    {
        EnsureWritable();
        try
        {
            RandomAccess.SetLength(_handle, lengthBytes);
        }
        catch (IOException e)
        {
            throw new HostIOException($"could not resize to {lengthBytes} bytes: {e.Message}", Path, e);
        }
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (!IsReadOnly && _cache != CacheMode.Unsafe)
        {
            NativeFile.DataSync(_handle, Path);
        }

        return ValueTask.CompletedTask;
    }

    public HostExtent GetExtent(long offsetBytes, long maxLengthBytes) =>
        NativeFile.Extent(_handle, offsetBytes, maxLengthBytes, Length);

    public void PunchHole(long offsetBytes, long lengthBytes)
    {
        EnsureWritable();
        long end = Math.Min(offsetBytes + lengthBytes, Length);
        if (end <= offsetBytes)
        {
            return;
        }

        if (!NativeFile.PunchHole(_handle, Path, offsetBytes, end - offsetBytes))
        {
            WriteZeros(offsetBytes, end - offsetBytes);
        }
    }

    public void ZeroRange(long offsetBytes, long lengthBytes)
    {
        EnsureWritable();
        if (lengthBytes <= 0)
        {
            return;
        }

        if (!NativeFile.ZeroRange(_handle, Path, offsetBytes, lengthBytes))
        {
            WriteZeros(offsetBytes, lengthBytes);
        }
    }

    public void Preallocate(long offsetBytes, long lengthBytes, bool writeZeros)
    {
        EnsureWritable();
        if (lengthBytes <= 0)
        {
            return;
        }

        if (writeZeros || !NativeFile.Fallocate(_handle, Path, 0, offsetBytes, lengthBytes))
        {
            WriteZeros(offsetBytes, lengthBytes);
        }
    }

    public void Dispose()
    {
        ImageLock.Release(_handle);
        _handle.Dispose();
        _directRmw.Dispose();
    }

    private void EnsureWritable()
    {
        if (IsReadOnly)
        {
            throw new HostIOException("the image is opened read-only", Path);
        }
    }

    private void WriteZeros(long offsetBytes, long lengthBytes)
    {
        const int Chunk = 1 << 20;
        using var zeros = new AlignedBuffer((int)Math.Min(Chunk, AlignUp(lengthBytes, DirectAlignment)), DirectAlignment);
        for (long done = 0; done < lengthBytes;)
        {
            int n = (int)Math.Min(Chunk, lengthBytes - done);
            try
            {
                if (IsDirect(_cache))
                {
                    DirectWriteAsync(offsetBytes + done, zeros.Memory[..n], default).AsTask().GetAwaiter().GetResult();
                }
                else
                {
                    RandomAccess.Write(_handle, zeros.Span[..n], offsetBytes + done);
                }
            }
            catch (IOException e)
            {
                // Preallocation and zeroing fill whole files: ENOSPC is likely here, and must name the file.
                throw new HostIOException($"write failed at offset {offsetBytes + done}: {e.Message}", Path, e);
            }

            done += n;
        }
    }

    // O_DIRECT path: every request goes through an aligned bounce buffer covering whole blocks.
    private int DirectRead(long offsetBytes, Span<byte> destination)
    {
        long start = AlignDown(offsetBytes, DirectAlignment);
        long end = AlignUp(offsetBytes + destination.Length, DirectAlignment);
        using var bounce = new AlignedBuffer(checked((int)(end - start)), DirectAlignment);
        int read = 0;
        while (read < bounce.Length)
        {
            int n = RandomAccess.Read(_handle, bounce.Span[read..], start + read);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        int available = (int)Math.Clamp(read - (offsetBytes - start), 0, destination.Length);
        bounce.Span.Slice((int)(offsetBytes - start), available).CopyTo(destination);
        return available;
    }

    private async ValueTask DirectWriteAsync(long offsetBytes, ReadOnlyMemory<byte> source, CancellationToken cancellationToken)
    {
        long start = AlignDown(offsetBytes, DirectAlignment);
        long end = AlignUp(offsetBytes + source.Length, DirectAlignment);
        bool partial = start != offsetBytes || end != offsetBytes + source.Length;

        // Read-modify-write of a partial block must not interleave with another write to it.
        if (partial)
        {
            await _directRmw.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        try
        {
            long oldLength = Length;
            using var bounce = new AlignedBuffer(checked((int)(end - start)), DirectAlignment);
            if (partial)
            {
                DirectRead(start, bounce.Span);
            }

            source.Span.CopyTo(bounce.Span[(int)(offsetBytes - start)..]);
            RandomAccess.Write(_handle, bounce.Span, start);
            long wanted = Math.Max(oldLength, offsetBytes + source.Length);
            if (Length != wanted)
            {
                RandomAccess.SetLength(_handle, wanted); // the whole-block write reached past the real end
            }
        }
        finally
        {
            if (partial)
            {
                _directRmw.Release();
            }
        }
    }

    private static long AlignDown(long value, int alignment) => value / alignment * alignment;

    private static long AlignUp(long value, int alignment) => (value + alignment - 1) / alignment * alignment;

    /// <summary>Native memory aligned for O_DIRECT, zero-filled.</summary>
    private sealed unsafe class AlignedBuffer : MemoryManager<byte>
    {
        private readonly byte* _pointer;

        public AlignedBuffer(int length, int alignment)
        {
            Length = length;
            _pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(length, 1), (nuint)alignment);
            NativeMemory.Clear(_pointer, (nuint)length);
        }

        public int Length { get; }

        public Span<byte> Span => new(_pointer, Length);

        public override Span<byte> GetSpan() => Span;

        public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing) => NativeMemory.AlignedFree(_pointer);
    }
}

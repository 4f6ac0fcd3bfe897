using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;

namespace ImgTool.Formats.Vhdx;

/// <summary>What the open path learned from the headers, region table and metadata.</summary>
internal sealed record VhdxLayoutInfo(
    VhdxHeader Header,
    int HeaderSlot,
    VhdxBatGeometry Geometry,
    long BatOffsetBytes,
    long BatLengthBytes,
    long MetadataOffsetBytes,
    long MetadataLengthBytes,
    int PhysicalSectorBytes,
    bool LeaveBlocksAllocated,
    VhdxParentLocator? ParentLocator);

/// <summary>
/// An open VHDX image. The whole BAT lives in memory (as in QEMU); reads run concurrently, block
/// allocation is serialized, and BAT changes reach the file through the log on flush and close
/// (spec 2.3: metadata is updated only through the log).
/// </summary>
internal sealed partial class VhdxImage : IImage, IBackingChain, ICheckable
{
    private const int BatPageBytes = 4096;
    private const int EntriesPerBatPage = BatPageBytes / VhdxBatGeometry.EntryBytes;
    private const int CopyChunkBytes = 1 << 20;

    private readonly ulong[] _bat;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly SortedSet<long> _dirtyBatPages = [];
    private readonly List<VhdxLogWrite>? _patches;
    private VhdxHeader _header;
    private int _headerSlot;
    private long _fileEndBytes;
    private bool _sessionStarted;
    private ulong _logSequence;
    private long _logWritePosition;

    internal VhdxImage(IHostFile file, VhdxLayoutInfo layout, ulong[] bat, List<VhdxLogWrite>? patches, bool logReplayedOnOpen, IImage? backing, string? backingName)
    {
        HostFile = file;
        Layout = layout;
        Geometry = layout.Geometry;
        _bat = bat;
        _patches = patches is { Count: > 0 } ? patches : null;
        _header = layout.Header;
        _headerSlot = layout.HeaderSlot;
        LogReplayedOnOpen = logReplayedOnOpen;
        Backing = backing;
        BackingFileName = backingName;
        _fileEndBytes = RoundUp(Math.Max(file.Length, layout.MetadataOffsetBytes + layout.MetadataLengthBytes), VhdxLimits.MiB);
    }

    public string FormatName => "vhdx";

    public IHostFile HostFile { get; }

    public VhdxLayoutInfo Layout { get; }

    public VhdxBatGeometry Geometry { get; }

    /// <summary>A writable open found a non-empty log and replayed it into the file.</summary>
    public bool LogReplayedOnOpen { get; }

    /// <summary>A read-only open found a non-empty log and replays it in memory only.</summary>
    public bool LogReplayedInMemory => _patches is not null;

    public ImageDetails Details => new(
        ClusterSizeBytes: Geometry.BlockSizeBytes,
        DirtyFlag: LogReplayedInMemory,
        Subformat: Geometry.HasParent ? "differencing" : Layout.LeaveBlocksAllocated ? "fixed" : "dynamic");

    public long SizeBytes => Geometry.VirtualSizeBytes;

    public int Alignment => Geometry.LogicalSectorBytes;

    public bool IsReadOnly => HostFile.IsReadOnly;

    public string? BackingFileName { get; }

    /// <summary>VHDX does not name the parent's format; the parent is probed (Hyper-V requires VHDX).</summary>
    public string? BackingFormat => null;

    public IBlockDevice? Backing { get; }

    internal ulong BatEntry(long index) => Volatile.Read(ref _bat[index]);

    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        while (buffer.Length > 0)
        {
            long block = offsetBytes / Geometry.BlockSizeBytes;
            long inBlock = offsetBytes % Geometry.BlockSizeBytes;
            int length = (int)Math.Min(buffer.Length, Geometry.BlockSizeBytes - inBlock);
            await ReadInBlockAsync(block, inBlock, buffer[..length], cancellationToken).ConfigureAwait(false);
            offsetBytes += length;
            buffer = buffer[length..];
        }
    }

    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckWritable();
        CheckRange(offsetBytes, buffer.Length);
        await EnsureSessionAsync(cancellationToken).ConfigureAwait(false);
        while (buffer.Length > 0)
        {
            long block = offsetBytes / Geometry.BlockSizeBytes;
            long inBlock = offsetBytes % Geometry.BlockSizeBytes;
            int length = (int)Math.Min(buffer.Length, Geometry.BlockSizeBytes - inBlock);
            ulong entry = BatEntry(Geometry.PayloadIndex(block));
            if (VhdxBatGeometry.StateOf(entry) == VhdxBlockState.FullyPresent)
            {
                await HostFile.WriteAsync(PayloadOffset(entry, block) + inBlock, buffer[..length], cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await AllocateAndWriteAsync(block, inBlock, buffer[..length], cancellationToken).ConfigureAwait(false);
            }

            offsetBytes += length;
            buffer = buffer[length..];
        }
    }

    public async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        CheckWritable();
        CheckRange(offsetBytes, lengthBytes);
        await EnsureSessionAsync(cancellationToken).ConfigureAwait(false);
        long end = offsetBytes + lengthBytes;
        while (offsetBytes < end)
        {
            long block = offsetBytes / Geometry.BlockSizeBytes;
            long blockStart = block * Geometry.BlockSizeBytes;
            long blockEnd = Math.Min(blockStart + Geometry.BlockSizeBytes, Geometry.VirtualSizeBytes);
            long pieceEnd = Math.Min(end, blockEnd);
            long index = Geometry.PayloadIndex(block);
            VhdxBlockState state = VhdxBatGeometry.StateOf(BatEntry(index));
            if (offsetBytes == blockStart && pieceEnd == blockEnd && !Layout.LeaveBlocksAllocated)
            {
                // A whole block becomes a ZERO block (spec 3.4.1): no data is written.
                await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    ulong old = _bat[index];
                    if (VhdxBatGeometry.StateOf(old) is VhdxBlockState.FullyPresent or VhdxBlockState.PartiallyPresent && flags.HasFlag(BlockZeroFlags.MayUnmap))
                    {
                        // The space is given back to the host; the block's offset is dropped with it.
                        HostFile.PunchHole(PayloadOffset(old, block), Geometry.BlockSizeBytes);
                    }

                    SetBatEntry(index, VhdxBatGeometry.Entry(VhdxBlockState.Zero, 0));
                }
                finally
                {
                    _lock.Release();
                }
            }
            else if (state == VhdxBlockState.FullyPresent)
            {
                // Zero the range in the host file (a hole or fallocate zero-range) instead of writing zeros.
                long host = PayloadOffset(BatEntry(index), block) + (offsetBytes - blockStart);
                if (flags.HasFlag(BlockZeroFlags.MayUnmap))
                {
                    HostFile.PunchHole(host, pieceEnd - offsetBytes);
                }
                else
                {
                    HostFile.ZeroRange(host, pieceEnd - offsetBytes);
                }
            }
            else if (!ReadsAsZero(state))
            {
                byte[] zeros = ArrayPool<byte>.Shared.Rent(CopyChunkBytes);
                try
                {
                    zeros.AsSpan(0, CopyChunkBytes).Clear();
                    for (long at = offsetBytes; at < pieceEnd;)
                    {
                        int chunk = (int)Math.Min(CopyChunkBytes, pieceEnd - at);
                        await WriteAsync(at, zeros.AsMemory(0, chunk), cancellationToken).ConfigureAwait(false);
                        at += chunk;
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(zeros);
                }
            }

            offsetBytes = pieceEnd;
        }
    }

    /// <summary>Whole blocks of a dynamic image become ZERO blocks; anything else is left as it is (discard is a hint).</summary>
    public async ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckWritable();
        CheckRange(offsetBytes, lengthBytes);
        if (Geometry.HasParent || Layout.LeaveBlocksAllocated)
        {
            return;
        }

        long first = (offsetBytes + Geometry.BlockSizeBytes - 1) / Geometry.BlockSizeBytes;
        long endBlock = offsetBytes + lengthBytes == Geometry.VirtualSizeBytes
            ? Geometry.DataBlocks
            : (offsetBytes + lengthBytes) / Geometry.BlockSizeBytes;
        if (first < endBlock)
        {
            long start = first * Geometry.BlockSizeBytes;
            long end = Math.Min(endBlock * Geometry.BlockSizeBytes, Geometry.VirtualSizeBytes);
            await WriteZeroesAsync(start, end - start, BlockZeroFlags.MayUnmap, cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (HostFile.IsReadOnly)
        {
            return;
        }

        await CommitMetadataAsync(cancellationToken).ConfigureAwait(false);
        await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, lengthBytes);
        long end = offsetBytes + lengthBytes;
        BlockStatus? first = null;
        long position = offsetBytes;
        while (position < end)
        {
            long block = position / Geometry.BlockSizeBytes;
            long inBlock = position % Geometry.BlockSizeBytes;
            long pieceLength = Math.Min(end - position, Geometry.BlockSizeBytes - inBlock);
            BlockStatus piece = await BlockStatusAsync(block, inBlock, pieceLength, cancellationToken).ConfigureAwait(false);
            if (first is not { } start)
            {
                first = piece;
            }
            else if (piece.Kind != start.Kind
                || (start.HostOffsetBytes >= 0) != (piece.HostOffsetBytes >= 0)
                || (start.HostOffsetBytes >= 0 && piece.HostOffsetBytes != start.HostOffsetBytes + start.LengthBytes))
            {
                break;
            }
            else
            {
                first = start with { LengthBytes = start.LengthBytes + piece.LengthBytes };
            }

            position += piece.LengthBytes;
            if (piece.LengthBytes < pieceLength)
            {
                break;
            }
        }

        return first!.Value;
    }

    public ValueTask<CheckReport> CheckAsync(CheckRepair repair, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(VhdxCheck.Run(this));

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_sessionStarted)
            {
                // Commit the BAT through the log, then mark the log empty (spec 2.3.3: a clean
                // close leaves LogGuid zero, so nothing is replayed on the next open).
                await CommitMetadataAsync(CancellationToken.None).ConfigureAwait(false);
                await HostFile.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                await WriteHeadersAsync(_header with { LogGuid = Guid.Empty }, CancellationToken.None).ConfigureAwait(false);
            }
        }
        finally
        {
            if (Backing is not null)
            {
                await Backing.DisposeAsync().ConfigureAwait(false);
            }

            HostFile.Dispose();
            _lock.Dispose();
        }
    }

    /// <summary>Reads host bytes, with the in-memory log replay of a read-only open laid over them.</summary>
    internal async ValueTask ReadHostAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        await HostFile.ReadZeroFilledAsync(offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
        if (_patches is not null)
        {
            ApplyPatches(_patches, offsetBytes, buffer.Span);
        }
    }

    internal static void ApplyPatches(List<VhdxLogWrite> patches, long offsetBytes, Span<byte> buffer)
    {
        long end = offsetBytes + buffer.Length;
        foreach (VhdxLogWrite patch in patches)
        {
            long from = Math.Max(offsetBytes, patch.FileOffsetBytes);
            long to = Math.Min(end, patch.FileOffsetBytes + patch.LengthBytes);
            if (from >= to)
            {
                continue;
            }

            Span<byte> target = buffer.Slice((int)(from - offsetBytes), (int)(to - from));
            if (patch.Data is { } data)
            {
                data.AsSpan((int)(from - patch.FileOffsetBytes), target.Length).CopyTo(target);
            }
            else
            {
                target.Clear();
            }
        }
    }

    private bool ReadsAsZero(VhdxBlockState state) =>
        state is not (VhdxBlockState.FullyPresent or VhdxBlockState.PartiallyPresent)
        && !(state == VhdxBlockState.NotPresent && Geometry.HasParent);

    private async ValueTask ReadInBlockAsync(long block, long inBlock, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        ulong entry = BatEntry(Geometry.PayloadIndex(block));
        switch (VhdxBatGeometry.StateOf(entry))
        {
            case VhdxBlockState.FullyPresent:
                await ReadHostAsync(PayloadOffset(entry, block) + inBlock, buffer, cancellationToken).ConfigureAwait(false);
                break;
            case VhdxBlockState.PartiallyPresent when Geometry.HasParent:
                await ReadPartialAsync(block, entry, inBlock, buffer, cancellationToken).ConfigureAwait(false);
                break;
            case VhdxBlockState.NotPresent when Geometry.HasParent:
                await ReadParentAsync((block * Geometry.BlockSizeBytes) + inBlock, buffer, cancellationToken).ConfigureAwait(false);
                break;
            default:
                buffer.Span.Clear();
                break;
        }
    }

    /// <summary>A differencing block whose sectors come from this file (bit set in the sector bitmap) or the parent (spec 3.4.2).</summary>
    private async ValueTask ReadPartialAsync(long block, ulong entry, long inBlock, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            long position = inBlock + done;
            (bool present, long run) = await SectorRunAsync(block, position, buffer.Length - done, cancellationToken).ConfigureAwait(false);
            Memory<byte> part = buffer.Slice(done, (int)run);
            if (present)
            {
                await ReadHostAsync(PayloadOffset(entry, block) + position, part, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ReadParentAsync((block * Geometry.BlockSizeBytes) + position, part, cancellationToken).ConfigureAwait(false);
            }

            done += part.Length;
        }
    }

    /// <summary>Whether the sector at <paramref name="inBlock"/> is present in this file, and how many bytes (up to maxLength) share that.</summary>
    private async ValueTask<(bool Present, long Run)> SectorRunAsync(long block, long inBlock, long maxLength, CancellationToken cancellationToken)
    {
        int sector = Geometry.LogicalSectorBytes;
        long chunk = block / Geometry.ChunkRatio;
        ulong bitmapEntry = BatEntry(Geometry.BitmapIndex(chunk));
        if (VhdxBatGeometry.StateOf(bitmapEntry) != VhdxBlockState.FullyPresent)
        {
            return (false, maxLength); // no bitmap: nothing of the chunk is in this file
        }

        long bitmapOffset = VhdxBatGeometry.OffsetOf(bitmapEntry);
        if (bitmapOffset < VhdxLayout.HeaderSectionEnd || bitmapOffset > VhdxLimits.MaxFileOffsetBytes)
        {
            throw new ImageCorruptException($"the sector bitmap of chunk {chunk} is at {bitmapOffset}, outside the file", "BAT", Layout.BatOffsetBytes, HostFile.Path);
        }

        long firstSector = ((block % Geometry.ChunkRatio) * Geometry.SectorsPerBlock) + (inBlock / sector);
        long lastSector = ((block % Geometry.ChunkRatio) * Geometry.SectorsPerBlock) + ((inBlock + maxLength - 1) / sector);
        long firstByte = firstSector / 8;
        int byteCount = (int)((lastSector / 8) - firstByte + 1);
        byte[] bits = ArrayPool<byte>.Shared.Rent(byteCount);
        try
        {
            await ReadHostAsync(bitmapOffset + firstByte, bits.AsMemory(0, byteCount), cancellationToken).ConfigureAwait(false);
            bool Bit(long s) => (bits[(s / 8) - firstByte] & (1 << (int)(s % 8))) != 0;
            bool present = Bit(firstSector);
            long s = firstSector + 1;
            while (s <= lastSector && Bit(s) == present)
            {
                s++;
            }

            long runEnd = Math.Min(inBlock + maxLength, (s - firstSector + (inBlock / sector)) * sector);
            return (present, runEnd - inBlock);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bits);
        }
    }

    private ValueTask ReadParentAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken) =>
        BackingRead.ReadOrZeroAsync(Backing, offsetBytes, buffer, cancellationToken);

    private async ValueTask<BlockStatus> BlockStatusAsync(long block, long inBlock, long length, CancellationToken cancellationToken)
    {
        ulong entry = BatEntry(Geometry.PayloadIndex(block));
        switch (VhdxBatGeometry.StateOf(entry))
        {
            case VhdxBlockState.FullyPresent:
            {
                // Holes in the host file inside a present block read as zeros (a fixed image made
                // sparse, a block written in part): saying so lets convert skip them.
                long host = PayloadOffset(entry, block) + inBlock;
                if (_patches is null)
                {
                    HostExtent extent = HostFile.GetExtent(host, length);
                    return new BlockStatus(extent.IsData ? BlockStatusKind.Data : BlockStatusKind.Zero, Math.Max(1, extent.LengthBytes), host);
                }

                return new BlockStatus(BlockStatusKind.Data, length, host);
            }

            case VhdxBlockState.PartiallyPresent when Geometry.HasParent:
                (bool present, long run) = await SectorRunAsync(block, inBlock, length, cancellationToken).ConfigureAwait(false);
                return present
                    ? new BlockStatus(BlockStatusKind.Data, run, PayloadOffset(entry, block) + inBlock)
                    : new BlockStatus(BlockStatusKind.Unallocated, run, Allocated: false);
            case VhdxBlockState.NotPresent:
                // Unallocated: a differencing image defers to its parent; a dynamic one reads zeros.
                return new BlockStatus(BlockStatusKind.Unallocated, length, Allocated: false);
            default:
                return new BlockStatus(BlockStatusKind.Zero, length);
        }
    }

    private async ValueTask AllocateAndWriteAsync(long block, long inBlock, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        bool released = false;
        try
        {
            long index = Geometry.PayloadIndex(block);
            ulong entry = _bat[index];
            VhdxBlockState state = VhdxBatGeometry.StateOf(entry);
            if (state == VhdxBlockState.FullyPresent)
            {
                await HostFile.WriteAsync(PayloadOffset(entry, block) + inBlock, data, cancellationToken).ConfigureAwait(false);
                return;
            }

            long blockStart = block * Geometry.BlockSizeBytes;
            long blockLength = Math.Min(Geometry.BlockSizeBytes, Geometry.VirtualSizeBytes - blockStart);
            long hostOffset;
            bool copyUp = Geometry.HasParent && state is VhdxBlockState.NotPresent or VhdxBlockState.PartiallyPresent;
            if (!copyUp)
            {
                // The new block lies past the end of the file, so it reads as zeros, which is what
                // every non-present state of a non-differencing block reads as: the entry can be
                // published at once and the data written outside the lock, concurrently with others.
                hostOffset = _fileEndBytes;
                _fileEndBytes += Geometry.BlockSizeBytes;
                HostFile.SetLength(_fileEndBytes);
                SetBatEntry(index, VhdxBatGeometry.Entry(VhdxBlockState.FullyPresent, hostOffset));
                _lock.Release();
                released = true;
                await HostFile.WriteAsync(hostOffset + inBlock, data, cancellationToken).ConfigureAwait(false);
                return;
            }

            if (state == VhdxBlockState.PartiallyPresent && Geometry.HasParent)
            {
                hostOffset = PayloadOffset(entry, block); // keep its place; the parent's sectors are copied in
            }
            else
            {
                hostOffset = _fileEndBytes;
                _fileEndBytes += Geometry.BlockSizeBytes;
                HostFile.SetLength(_fileEndBytes);
            }

            if (copyUp)
            {
                // This writer keeps no sector bitmaps: the block becomes fully present, with the
                // parent's data (or the merged partial content) copied around the new data.
                await CopyUpAsync(block, hostOffset, 0, inBlock, cancellationToken).ConfigureAwait(false);
                await CopyUpAsync(block, hostOffset, inBlock + data.Length, blockLength, cancellationToken).ConfigureAwait(false);
            }

            await HostFile.WriteAsync(hostOffset + inBlock, data, cancellationToken).ConfigureAwait(false);
            SetBatEntry(index, VhdxBatGeometry.Entry(VhdxBlockState.FullyPresent, hostOffset));
        }
        finally
        {
            if (!released)
            {
                _lock.Release();
            }
        }
    }

    private async ValueTask CopyUpAsync(long block, long hostOffset, long from, long to, CancellationToken cancellationToken)
    {
        if (from >= to)
        {
            return;
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(CopyChunkBytes);
        try
        {
            for (long at = from; at < to;)
            {
                int chunk = (int)Math.Min(CopyChunkBytes, to - at);
                await ReadInBlockAsync(block, at, buffer.AsMemory(0, chunk), cancellationToken).ConfigureAwait(false);
                if (!ZeroScan.IsAllZero(buffer.AsSpan(0, chunk)))
                {
                    await HostFile.WriteAsync(hostOffset + at, buffer.AsMemory(0, chunk), cancellationToken).ConfigureAwait(false);
                }

                at += chunk;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void SetBatEntry(long index, ulong entry)
    {
        Volatile.Write(ref _bat[index], entry);
        lock (_dirtyBatPages)
        {
            _dirtyBatPages.Add(index / EntriesPerBatPage);
        }
    }

    /// <summary>
    /// The first change of a session: new FileWriteGuid and DataWriteGuid (spec 2.2.2 requires
    /// both to change before the file and the visible data change) and a fresh LogGuid for the
    /// entries this session writes.
    /// </summary>
    private async ValueTask EnsureSessionAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _sessionStarted))
        {
            return;
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_sessionStarted)
            {
                return;
            }

            await WriteHeadersAsync(
                _header with { FileWriteGuid = Guid.NewGuid(), DataWriteGuid = Guid.NewGuid(), LogGuid = Guid.NewGuid(), LogVersion = 0 },
                cancellationToken).ConfigureAwait(false);
            _logSequence = 1;
            _logWritePosition = 0;
            Volatile.Write(ref _sessionStarted, true);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Spec 2.2.2.1: write the new header over the older one, flush, then over the other, so one valid current header always exists.</summary>
    private async ValueTask WriteHeadersAsync(VhdxHeader header, CancellationToken cancellationToken)
    {
        byte[] block = new byte[VhdxHeader.SizeBytes];
        for (int i = 0; i < 2; i++)
        {
            int slot = 1 - _headerSlot;
            header = header with { SequenceNumber = _header.SequenceNumber + 1 };
            header.Write(block);
            await HostFile.WriteAsync(slot == 0 ? VhdxLayout.Header1Offset : VhdxLayout.Header2Offset, block, cancellationToken).ConfigureAwait(false);
            await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
            _header = header;
            _headerSlot = slot;
        }
    }

    /// <summary>
    /// Writes the changed BAT pages: data flushed first, then a log entry with the pages, flushed,
    /// then the pages in place, flushed. Each entry's tail is itself, so after a crash the newest
    /// entry alone replays what was not yet in place.
    /// </summary>
    private async ValueTask CommitMetadataAsync(CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long[] pages;
            lock (_dirtyBatPages)
            {
                pages = [.. _dirtyBatPages];
                _dirtyBatPages.Clear();
            }

            if (pages.Length == 0)
            {
                return;
            }

            long logLength = _header.LogLengthBytes;
            int maxPages = (int)(logLength / VhdxLog.SectorBytes) - 1;
            while (maxPages > 0 && VhdxLog.DescriptorSectors(maxPages) + maxPages > logLength / VhdxLog.SectorBytes)
            {
                maxPages--;
            }

            await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
            for (int start = 0; start < pages.Length; start += maxPages)
            {
                var batch = new List<(long FileOffset, byte[] Page)>();
                for (int i = start; i < Math.Min(pages.Length, start + maxPages); i++)
                {
                    batch.Add((Layout.BatOffsetBytes + (pages[i] * BatPageBytes), BatPage(pages[i])));
                }

                long entryLength = (VhdxLog.DescriptorSectors(batch.Count) + batch.Count) * (long)VhdxLog.SectorBytes;
                if (_logWritePosition + entryLength > logLength)
                {
                    _logWritePosition = 0;
                }

                byte[] entry = VhdxLog.BuildEntry(batch, _logSequence++, _header.LogGuid, (uint)_logWritePosition, Math.Max(HostFile.Length, _fileEndBytes));
                await HostFile.WriteAsync((long)_header.LogOffsetBytes + _logWritePosition, entry, cancellationToken).ConfigureAwait(false);
                _logWritePosition += entryLength;
                await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
                foreach ((long fileOffset, byte[] page) in batch)
                {
                    await HostFile.WriteAsync(fileOffset, page, cancellationToken).ConfigureAwait(false);
                }

                await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    private byte[] BatPage(long page)
    {
        byte[] bytes = new byte[BatPageBytes];
        long first = page * EntriesPerBatPage;
        for (int i = 0; i < EntriesPerBatPage && first + i < _bat.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(i * VhdxBatGeometry.EntryBytes), BatEntry(first + i));
        }

        return bytes;
    }

    private long PayloadOffset(ulong entry, long block)
    {
        long offset = VhdxBatGeometry.OffsetOf(entry);
        if (offset < VhdxLayout.HeaderSectionEnd || offset > VhdxLimits.MaxFileOffsetBytes)
        {
            throw new ImageCorruptException($"the BAT entry of block {block} points to {offset}, outside the file", "BAT", Layout.BatOffsetBytes + (Geometry.PayloadIndex(block) * 8), HostFile.Path);
        }

        return offset;
    }

    private void CheckRange(long offsetBytes, long lengthBytes)
    {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > SizeBytes - lengthBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"request [{offsetBytes}, +{lengthBytes}) is outside the disk of {SizeBytes} bytes");
        }
    }

    private void CheckWritable()
    {
        if (HostFile.IsReadOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", HostFile.Path);
        }
    }

    private static long RoundUp(long value, long unit) => (value + unit - 1) / unit * unit;
}

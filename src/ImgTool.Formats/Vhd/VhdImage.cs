using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;

namespace ImgTool.Formats.Vhd;

/// <summary>
/// An opened VHD: fixed (the file is the disk followed by the footer), dynamic (blocks allocated on demand through the
/// block allocation table) or differencing (a dynamic disk whose sector bitmaps say which sectors come from the parent).
/// </summary>
internal sealed partial class VhdImage : IImage, IBackingChain, ICheckable
{
    /// <summary>A BAT entry for a block that is not allocated.</summary>
    public const uint Unallocated = 0xFFFFFFFF;

    private const int SectorBytes = VhdLimits.SectorBytes;

    private readonly IHostFile _file;
    private readonly uint[] _bat;
    private readonly HashSet<long> _invalidBlocks;
    private readonly VhdBitmaps? _bitmaps;
    private readonly int _blockBytes;
    private readonly int _blockShift;
    private readonly SemaphoreSlim _metadataLock = new(1, 1);
    private readonly byte[] _footerBytes;
    private readonly IImage? _backing;
    private long _nextFreeBytes;

    private VhdImage(VhdOpenState state)
    {
        _file = state.File;
        Footer = state.Footer;
        _footerBytes = state.FooterBytes;
        Header = state.Header;
        _bat = state.Bat;
        _invalidBlocks = state.InvalidBlocks;
        _blockBytes = (int)(state.Header?.BlockSize ?? 0);
        _blockShift = _blockBytes == 0 ? 0 : System.Numerics.BitOperations.Log2((uint)_blockBytes);
        SizeBytes = state.SizeBytes;
        _nextFreeBytes = state.NextFreeBytes;
        BackingFileName = state.ParentName;
        _backing = state.Parent;
        FooterAtHead = state.FooterAtHead;
        if (state.Header is not null)
        {
            int bitmapBytes = BitmapBytesFor(_blockBytes);
            _bitmaps = new VhdBitmaps(_file, bitmapBytes, _blockBytes / SectorBytes, _bat.Length);
        }
    }

    public VhdFooter Footer { get; }

    public VhdDynamicHeader? Header { get; }

    /// <summary>Whether the footer used came from the copy at offset 0 (dynamic disks) rather than the end.</summary>
    public bool FooterAtHead { get; }

    public bool IsFixed => Footer.DiskType == VhdDiskType.Fixed;

    public bool IsDifferencing => Footer.DiskType == VhdDiskType.Differencing;

    public string FormatName => "vpc";

    public IHostFile HostFile => _file;

    public ImageDetails Details => new(ClusterSizeBytes: IsFixed ? null : _blockBytes, Subformat: Footer.DiskType.ToString().ToLowerInvariant());

    public long SizeBytes { get; }

    public int Alignment => IsFixed ? _file.Alignment : SectorBytes;

    public bool IsReadOnly => _file.IsReadOnly;

    public string? BackingFileName { get; }

    public string? BackingFormat => BackingFileName is null ? null : "vpc";

    public IBlockDevice? Backing => _backing;

    /// <summary>Bytes of the sector bitmap in front of each block: one bit per sector, padded to whole sectors.</summary>
    public static int BitmapBytesFor(int blockBytes) => (((blockBytes / SectorBytes) + 7) / 8 + SectorBytes - 1) / SectorBytes * SectorBytes;

    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        if (IsFixed)
        {
            await _file.ReadZeroFilledAsync(offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        for (int done = 0; done < buffer.Length;)
        {
            long position = offsetBytes + done;
            long block = position >> _blockShift;
            int inBlock = (int)(position & (_blockBytes - 1));
            int length = Math.Min(buffer.Length - done, _blockBytes - inBlock);
            Memory<byte> part = buffer.Slice(done, length);
            uint entry = Volatile.Read(ref _bat[block]);
            if (entry == Unallocated)
            {
                await ReadBelowAsync(position, part, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                long bitmapOffset = BlockOffset(block, entry);
                byte[]? bitmap = await _bitmaps!.GetAsync(block, bitmapOffset, cancellationToken).ConfigureAwait(false);
                long dataOffset = bitmapOffset + _bitmaps.BitmapBytes + inBlock;
                if (bitmap is null)
                {
                    await _file.ReadZeroFilledAsync(dataOffset, part, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await ReadByBitmapAsync(bitmap, position, inBlock, dataOffset, part, cancellationToken).ConfigureAwait(false);
                }
            }

            done += length;
        }
    }

    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckWritable();
        CheckRange(offsetBytes, buffer.Length);
        if (IsFixed)
        {
            await _file.WriteAsync(offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        // Sector bitmaps have sector granularity: partial sectors are completed with what the disk reads there now.
        long end = offsetBytes + buffer.Length;
        long alignedStart = RoundUp(offsetBytes);
        long alignedEnd = end / SectorBytes * SectorBytes;
        if (alignedStart >= alignedEnd)
        {
            for (long sector = offsetBytes / SectorBytes * SectorBytes; sector < end; sector += SectorBytes)
            {
                long from = Math.Max(sector, offsetBytes);
                long to = Math.Min(sector + SectorBytes, end);
                await PatchSectorAsync(sector, buffer.Slice((int)(from - offsetBytes), (int)(to - from)), (int)(from - sector), cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        if (alignedStart > offsetBytes)
        {
            long sector = alignedStart - SectorBytes;
            await PatchSectorAsync(sector, buffer[..(int)(alignedStart - offsetBytes)], (int)(offsetBytes - sector), cancellationToken).ConfigureAwait(false);
        }

        await WriteAlignedAsync(alignedStart, buffer.Slice((int)(alignedStart - offsetBytes), (int)(alignedEnd - alignedStart)), cancellationToken).ConfigureAwait(false);
        if (alignedEnd < end)
        {
            await PatchSectorAsync(alignedEnd, buffer[(int)(alignedEnd - offsetBytes)..], 0, cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        CheckWritable();
        CheckRange(offsetBytes, lengthBytes);
        if (IsFixed)
        {
            ZeroHost(offsetBytes, lengthBytes, flags);
            return;
        }

        long end = offsetBytes + lengthBytes;
        if (IsDifferencing)
        {
            // Zeros must hide the parent's data, so they are stored: allocate, zero the host range, set the bits.
            long alignedStart = Math.Min(RoundUp(offsetBytes), end);
            long alignedEnd = Math.Max(end / SectorBytes * SectorBytes, alignedStart);
            if (alignedStart > offsetBytes)
            {
                await WriteAsync(offsetBytes, new byte[alignedStart - offsetBytes], cancellationToken).ConfigureAwait(false);
            }

            for (long position = alignedStart; position < alignedEnd;)
            {
                long block = position >> _blockShift;
                int inBlock = (int)(position & (_blockBytes - 1));
                int length = (int)Math.Min(alignedEnd - position, _blockBytes - inBlock);
                long bitmapOffset = await EnsureAllocatedAsync(block, cancellationToken).ConfigureAwait(false);
                ZeroHost(bitmapOffset + _bitmaps!.BitmapBytes + inBlock, length, flags);
                await SetBitsAsync(block, bitmapOffset, inBlock / SectorBytes, length / SectorBytes, cancellationToken).ConfigureAwait(false);
                position += length;
            }

            if (alignedEnd < end && alignedEnd >= alignedStart)
            {
                await WriteAsync(alignedEnd, new byte[end - alignedEnd], cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        // A dynamic disk: unallocated blocks already read as zeros; allocated ranges are zeroed in place. Sectors whose
        // bitmap bit is clear read as zeros whatever the host holds, so zeroing them too is harmless.
        for (long position = offsetBytes; position < end;)
        {
            long block = position >> _blockShift;
            int inBlock = (int)(position & (_blockBytes - 1));
            long length = Math.Min(end - position, _blockBytes - inBlock);
            uint entry = Volatile.Read(ref _bat[block]);
            if (entry != Unallocated)
            {
                ZeroHost(BlockOffset(block, entry) + _bitmaps!.BitmapBytes + inBlock, length, flags);
            }

            position += length;
        }
    }

    /// <summary>Discard is a hint: fixed and dynamic disks deallocate host space; a differencing disk keeps its data,
    /// since dropping it would expose the parent's.</summary>
    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        IsDifferencing ? ValueTask.CompletedTask : WriteZeroesAsync(offsetBytes, lengthBytes, BlockZeroFlags.MayUnmap, cancellationToken);

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => _file.FlushAsync(cancellationToken);

    public async ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, lengthBytes);
        lengthBytes = Math.Max(1, Math.Min(lengthBytes, SizeBytes - offsetBytes));
        if (IsFixed)
        {
            // As QEMU: all data, at the same offset in the file; holes in the file make it data that reads as zeros.
            return HostHoles.Refine(new BlockStatus(BlockStatusKind.Data, lengthBytes, offsetBytes), _file);
        }

        BlockStatusKind absent = IsDifferencing ? BlockStatusKind.Unallocated : BlockStatusKind.Zero;
        long block = offsetBytes >> _blockShift;
        int inBlock = (int)(offsetBytes & (_blockBytes - 1));
        uint entry = Volatile.Read(ref _bat[block]);
        if (entry == Unallocated)
        {
            // Unallocated blocks in a row make one extent.
            long run = _blockBytes - inBlock;
            for (long next = block + 1; run < lengthBytes && next < _bat.Length && Volatile.Read(ref _bat[next]) == Unallocated; next++)
            {
                run += _blockBytes;
            }

            return new BlockStatus(absent, Math.Min(run, lengthBytes), Allocated: false);
        }

        long bitmapOffset = BlockOffset(block, entry);
        long dataOffset = bitmapOffset + _bitmaps!.BitmapBytes + inBlock;
        long inBlockLength = Math.Min(lengthBytes, _blockBytes - inBlock);
        byte[]? bitmap = await _bitmaps.GetAsync(block, bitmapOffset, cancellationToken).ConfigureAwait(false);
        if (bitmap is null)
        {
            return new BlockStatus(BlockStatusKind.Data, inBlockLength, dataOffset);
        }

        long sector = inBlock / SectorBytes;
        long lastSector = (inBlock + inBlockLength - 1) / SectorBytes;
        long sectors = VhdBitmaps.RunLength(bitmap, sector, lastSector - sector + 1, out bool set);
        long length = Math.Min(inBlockLength, ((sector + sectors) * SectorBytes) - inBlock);
        return set
            ? new BlockStatus(BlockStatusKind.Data, length, dataOffset)
            : new BlockStatus(absent, length, Allocated: false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_backing is not null)
        {
            await _backing.DisposeAsync().ConfigureAwait(false);
        }

        _file.Dispose();
        _metadataLock.Dispose();
    }

    private static long RoundUp(long offsetBytes) => (offsetBytes + SectorBytes - 1) / SectorBytes * SectorBytes;

    private void CheckRange(long offsetBytes, long lengthBytes)
    {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > SizeBytes || lengthBytes > SizeBytes - offsetBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"request [{offsetBytes}, +{lengthBytes}) is outside the disk ({SizeBytes} bytes)");
        }
    }

    private void CheckWritable()
    {
        if (_file.IsReadOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", _file.Path);
        }
    }

    /// <summary>Where a block's bitmap starts in the file; entries found out of range on open fail here, when used.</summary>
    private long BlockOffset(long block, uint entry)
    {
        if (_invalidBlocks.Count > 0 && _invalidBlocks.Contains(block))
        {
            throw new ImageCorruptException(
                $"BAT entry {block} points outside the file (sector {entry}); run 'check'", "BAT", (long)Header!.Value.TableOffset + (block * 4), _file.Path);
        }

        return (long)entry * SectorBytes;
    }

    private void ZeroHost(long hostOffsetBytes, long lengthBytes, BlockZeroFlags flags)
    {
        if (flags.HasFlag(BlockZeroFlags.MayUnmap))
        {
            _file.PunchHole(hostOffsetBytes, lengthBytes);
        }
        else
        {
            _file.ZeroRange(hostOffsetBytes, lengthBytes);
        }
    }

    /// <summary>What lies under this image: the parent's data (differencing) or zeros.</summary>
    private ValueTask ReadBelowAsync(long offsetBytes, Memory<byte> part, CancellationToken cancellationToken) =>
        BackingRead.ReadOrZeroAsync(_backing, offsetBytes, part, cancellationToken);

    private async ValueTask ReadByBitmapAsync(byte[] bitmap, long position, int inBlock, long dataOffset, Memory<byte> part, CancellationToken cancellationToken)
    {
        for (int done = 0; done < part.Length;)
        {
            long sector = (inBlock + done) / SectorBytes;
            long lastSector = (inBlock + part.Length - 1) / SectorBytes;
            long sectors = VhdBitmaps.RunLength(bitmap, sector, lastSector - sector + 1, out bool set);
            int length = (int)Math.Min(part.Length - done, ((sector + sectors) * SectorBytes) - (inBlock + done));
            Memory<byte> run = part.Slice(done, length);
            if (set)
            {
                await _file.ReadZeroFilledAsync(dataOffset + done, run, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ReadBelowAsync(position + done, run, cancellationToken).ConfigureAwait(false);
            }

            done += length;
        }
    }

    private async ValueTask PatchSectorAsync(long sectorOffset, ReadOnlyMemory<byte> data, int offsetInSector, CancellationToken cancellationToken)
    {
        if (IsDifferencing && _backing is null)
        {
            // The rest of the sector may be the parent's data, which is not open: completing it with zeros would lose it.
            throw new UnsupportedFeatureException("a partial-sector write to a differencing VHD needs its parent, which is not open", _file.Path);
        }

        byte[] sector = ArrayPool<byte>.Shared.Rent(SectorBytes);
        try
        {
            Memory<byte> buffer = sector.AsMemory(0, SectorBytes);
            await ReadAsync(sectorOffset, buffer, cancellationToken).ConfigureAwait(false);
            data.CopyTo(buffer[offsetInSector..]);
            await WriteAlignedAsync(sectorOffset, buffer, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(sector);
        }
    }

    private async ValueTask WriteAlignedAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        for (int done = 0; done < buffer.Length;)
        {
            long position = offsetBytes + done;
            long block = position >> _blockShift;
            int inBlock = (int)(position & (_blockBytes - 1));
            int length = Math.Min(buffer.Length - done, _blockBytes - inBlock);
            long bitmapOffset = await EnsureAllocatedAsync(block, cancellationToken).ConfigureAwait(false);
            await _file.WriteAsync(bitmapOffset + _bitmaps!.BitmapBytes + inBlock, buffer.Slice(done, length), cancellationToken).ConfigureAwait(false);

            // Data first, then the bits that make it visible: a crash in between loses the write, never exposes garbage.
            await SetBitsAsync(block, bitmapOffset, inBlock / SectorBytes, length / SectorBytes, cancellationToken).ConfigureAwait(false);
            done += length;
        }
    }

    private async ValueTask SetBitsAsync(long block, long bitmapOffset, long firstSector, long sectorCount, CancellationToken cancellationToken)
    {
        byte[]? bitmap = await _bitmaps!.GetAsync(block, bitmapOffset, cancellationToken).ConfigureAwait(false);
        if (bitmap is null || VhdBitmaps.AllSet(bitmap, firstSector, sectorCount))
        {
            return;
        }

        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            byte[]? current = await _bitmaps.GetAsync(block, bitmapOffset, cancellationToken).ConfigureAwait(false);
            if (current is null)
            {
                return;
            }

            byte[] updated = (byte[])current.Clone();
            VhdBitmaps.SetRange(updated, firstSector, sectorCount);

            // Write only the bitmap sectors that changed.
            int firstByte = (int)(firstSector / 8) / SectorBytes * SectorBytes;
            int endByte = (int)Math.Min(updated.Length, RoundUp(((firstSector + sectorCount - 1) / 8) + 1));
            await _file.WriteAsync(bitmapOffset + firstByte, updated.AsMemory(firstByte, endByte - firstByte), cancellationToken).ConfigureAwait(false);
            _bitmaps.Store(block, updated);
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    /// <summary>
    /// The bitmap offset of a block, allocating it at the end of the file when needed, in the order qemu uses: the
    /// bitmap, then the footer moved past the new block, then the BAT entry that makes the block part of the disk.
    /// </summary>
    private async ValueTask<long> EnsureAllocatedAsync(long block, CancellationToken cancellationToken)
    {
        uint entry = Volatile.Read(ref _bat[block]);
        if (entry != Unallocated)
        {
            return BlockOffset(block, entry);
        }

        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            entry = Volatile.Read(ref _bat[block]);
            if (entry != Unallocated)
            {
                return BlockOffset(block, entry);
            }

            long bitmapOffset = _nextFreeBytes;
            long sector = bitmapOffset / SectorBytes;
            if (sector >= Unallocated)
            {
                throw new UnsupportedFeatureException("the VHD file is full: its block allocation table cannot address past 2 TiB", _file.Path);
            }

            int bitmapBytes = _bitmaps!.BitmapBytes;
            long blockEnd = bitmapOffset + bitmapBytes + _blockBytes;
            long oldLength = _file.Length;

            // Dynamic disks set every bit, as qemu does, so the block reads as what the host holds (zeros until written);
            // a differencing disk starts with no bit set, so every sector still comes from the parent.
            byte[] bitmap = new byte[bitmapBytes];
            if (!IsDifferencing)
            {
                bitmap.AsSpan().Fill(0xff);
            }

            await _file.WriteAsync(bitmapOffset, bitmap, cancellationToken).ConfigureAwait(false);
            long staleEnd = Math.Min(oldLength, blockEnd);
            if (staleEnd > bitmapOffset + bitmapBytes)
            {
                // Whatever the file held here before (a footer or stray bytes) must read as zeros in the new block.
                _file.ZeroRange(bitmapOffset + bitmapBytes, staleEnd - (bitmapOffset + bitmapBytes));
            }

            await _file.WriteAsync(blockEnd, _footerBytes, cancellationToken).ConfigureAwait(false);
            byte[] entryBytes = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(entryBytes, (uint)sector);
            await _file.WriteAsync((long)(long)Header!.Value.TableOffset + (block * 4), entryBytes, cancellationToken).ConfigureAwait(false);
            _nextFreeBytes = blockEnd;
            if (IsDifferencing)
            {
                _bitmaps.Store(block, bitmap);
            }
            else
            {
                _bitmaps.MarkFull(block);
            }

            Volatile.Write(ref _bat[block], (uint)sector);
            return bitmapOffset;
        }
        finally
        {
            _metadataLock.Release();
        }
    }
}

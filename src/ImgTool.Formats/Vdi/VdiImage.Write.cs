using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vdi;

/// <summary>
/// Writes. A write to an allocated block goes in place. A write to a free or zero block allocates the next slot at the
/// end of the file, as QEMU and VirtualBox do, in their order: the block's data first, then the header with the new
/// blocks-allocated count, then the block map entry that makes the block part of the disk (a crash in between leaves
/// an unused slot, never an entry pointing at garbage). Whole blocks are written in one request; nothing is allocated
/// per sector, and the rest of a new block reads as zeros because the file is extended sparsely.
/// </summary>
internal sealed partial class VdiImage
{
    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckWritable();
        CheckRange(offsetBytes, buffer.Length);
        for (int done = 0; done < buffer.Length;)
        {
            long position = offsetBytes + done;
            long block = position >> _blockShift;
            int inBlock = (int)(position & (_blockBytes - 1));
            int length = Math.Min(buffer.Length - done, _blockBytes - inBlock);
            ReadOnlyMemory<byte> part = buffer.Slice(done, length);
            uint entry = Volatile.Read(ref _map[block]);
            if (VdiBlockMap.IsAllocated(entry))
            {
                await RecordModificationAsync(cancellationToken).ConfigureAwait(false);
                await _file.WriteAsync(WritableDataOffset(block, entry) + inBlock, part, cancellationToken).ConfigureAwait(false);
            }
            else if (!part.Span.ContainsAnyExcept((byte)0) && (entry == VdiBlockMap.Zero || !IsDifferencing))
            {
                // Zeros over a block that already reads as zeros: nothing to store (VirtualBox skips these too).
            }
            else
            {
                await AllocateAsync(block, inBlock, part, length, cancellationToken).ConfigureAwait(false);
            }

            done += length;
        }
    }

    /// <summary>
    /// Allocated ranges are zeroed in place (punched when allowed), so the blocks-allocated count stays what QEMU's check
    /// expects. Free and zero blocks of a base image already read as zeros. In a differencing image a free block reads
    /// the parent, so a whole block becomes a zero block and a part of one is allocated with the parent's other data.
    /// </summary>
    public async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        CheckWritable();
        CheckRange(offsetBytes, lengthBytes);
        long end = offsetBytes + lengthBytes;
        for (long position = offsetBytes; position < end;)
        {
            long block = position >> _blockShift;
            int inBlock = (int)(position & (_blockBytes - 1));
            int length = (int)Math.Min(end - position, _blockBytes - inBlock);
            uint entry = Volatile.Read(ref _map[block]);
            if (VdiBlockMap.IsAllocated(entry))
            {
                await RecordModificationAsync(cancellationToken).ConfigureAwait(false);
                long host = WritableDataOffset(block, entry) + inBlock;
                if (flags.HasFlag(BlockZeroFlags.MayUnmap))
                {
                    _file.PunchHole(host, length);
                }
                else
                {
                    _file.ZeroRange(host, length);
                }
            }
            else if (entry == VdiBlockMap.Free && IsDifferencing)
            {
                if (inBlock == 0 && length >= UsedBytes(block))
                {
                    await SetEntryAsync(block, VdiBlockMap.Free, VdiBlockMap.Zero, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await AllocateAsync(block, inBlock, null, length, cancellationToken).ConfigureAwait(false);
                }
            }

            position += length;
        }
    }

    /// <summary>Discard is a hint: a base image deallocates host space under allocated blocks; a differencing image keeps
    /// its data, since dropping it would expose the parent's.</summary>
    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        IsDifferencing ? ValueTask.CompletedTask : WriteZeroesAsync(offsetBytes, lengthBytes, BlockZeroFlags.MayUnmap, cancellationToken);

    /// <summary>Bytes of <paramref name="block"/> inside the disk (less than a block only for the last block).</summary>
    private long UsedBytes(long block) => Math.Min(_blockBytes, SizeBytes - (block * _blockBytes));

    private long WritableDataOffset(long block, uint entry)
    {
        if (_shared.Count > 0 && _shared.Contains(block))
        {
            throw new ImageCorruptException(
                $"block map entry {block} shares slot {entry} with another block; writing would change both (run 'check -r all')", "block map", _header.BlockMapOffsetBytes + (block * 4), _file.Path);
        }

        return DataOffset(block, entry);
    }

    /// <summary>
    /// Stores a free or zero block in the next slot with <paramref name="data"/> (null: zeros) at
    /// <paramref name="inBlock"/>; the rest of the block is zeros, or the parent's data for a free block of a
    /// differencing image.
    /// </summary>
    private async ValueTask AllocateAsync(long block, int inBlock, ReadOnlyMemory<byte>? data, int lengthBytes, CancellationToken cancellationToken)
    {
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        bool release = true;
        try
        {
            uint entry = _map[block];
            if (VdiBlockMap.IsAllocated(entry))
            {
                // Another request allocated it meanwhile: an ordinary write now.
                _metadataLock.Release();
                release = false;
                if (data is { } late)
                {
                    await _file.WriteAsync(WritableDataOffset(block, entry) + inBlock, late, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    _file.ZeroRange(WritableDataOffset(block, entry) + inBlock, lengthBytes);
                }

                return;
            }

            long slot = _nextSlot;
            if (slot >= _header.BlockCount)
            {
                throw new ImageCorruptException(
                    $"no free block slot is left (the header counts {_header.BlocksAllocated} of {_header.BlockCount} allocated); run 'check -r all'", "header", VdiHeader.BlocksAllocatedOffset, _file.Path);
            }

            long start = VdiBlockMap.SlotOffset(_header, slot);
            long end = start + _header.BlockSpanBytes;
            long dataStart = start + _header.BlockExtraBytes;
            long oldLength = _file.Length;
            if (oldLength > start)
            {
                // Bytes left past the last slot (a leak, an interrupted allocation) must not show through.
                _file.ZeroRange(start, Math.Min(oldLength, end) - start);
            }

            if (entry == VdiBlockMap.Free && IsDifferencing)
            {
                long origin = block * _blockBytes;
                await CopyParentAsync(origin, dataStart, inBlock, cancellationToken).ConfigureAwait(false);
                long after = inBlock + lengthBytes;
                await CopyParentAsync(origin + after, dataStart + after, UsedBytes(block) - after, cancellationToken).ConfigureAwait(false);
            }

            if (data is { } bytes)
            {
                await _file.WriteAsync(dataStart + inBlock, bytes, cancellationToken).ConfigureAwait(false);
            }

            if (_file.Length < end)
            {
                _file.SetLength(end);
            }

            _header = _header with { BlocksAllocated = (uint)(slot + 1) };
            await WriteHeaderAsync(renewModification: !_modificationRecorded, cancellationToken).ConfigureAwait(false);
            await WriteEntryAsync(block, (uint)slot, cancellationToken).ConfigureAwait(false);
            _nextSlot = slot + 1;
            Volatile.Write(ref _map[block], (uint)slot);
        }
        finally
        {
            if (release)
            {
                _metadataLock.Release();
            }
        }
    }

    /// <summary>Copies the parent's data of a virtual range into the new block; all-zero runs are left as the sparse
    /// zeros the new block already holds.</summary>
    private async ValueTask CopyParentAsync(long virtualOffset, long hostOffset, long lengthBytes, CancellationToken cancellationToken)
    {
        if (lengthBytes <= 0)
        {
            return;
        }

        if (_parent is null)
        {
            // The rest of the block is the parent's data, which is not open: completing it with zeros would lose it.
            throw new UnsupportedFeatureException("a partial-block write to a differencing VDI needs its parent, which is not open", _file.Path);
        }

        byte[] chunk = ArrayPool<byte>.Shared.Rent((int)Math.Min(lengthBytes, VdiLimits.CopyChunkBytes));
        try
        {
            for (long done = 0; done < lengthBytes;)
            {
                int length = (int)Math.Min(chunk.Length, lengthBytes - done);
                Memory<byte> part = chunk.AsMemory(0, length);
                await BackingRead.ReadOrZeroAsync(_parent, virtualOffset + done, part, cancellationToken).ConfigureAwait(false);
                if (part.Span.ContainsAnyExcept((byte)0))
                {
                    await _file.WriteAsync(hostOffset + done, part, cancellationToken).ConfigureAwait(false);
                }

                done += length;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    /// <summary>Changes one entry from <paramref name="expected"/> to <paramref name="value"/> (a marker), on disk and in memory.</summary>
    private async ValueTask SetEntryAsync(long block, uint expected, uint value, CancellationToken cancellationToken)
    {
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_map[block] != expected)
            {
                return;
            }

            if (!_modificationRecorded)
            {
                await WriteHeaderAsync(renewModification: true, cancellationToken).ConfigureAwait(false);
            }

            await WriteEntryAsync(block, value, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _map[block], value);
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    /// <summary>The first write of a session gives the image a new modification UUID, as VirtualBox does.</summary>
    private async ValueTask RecordModificationAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _modificationRecorded))
        {
            return;
        }

        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_modificationRecorded)
            {
                await WriteHeaderAsync(renewModification: true, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    /// <summary>Writes the header sector; called with the lock held.</summary>
    private async ValueTask WriteHeaderAsync(bool renewModification, CancellationToken cancellationToken)
    {
        if (renewModification)
        {
            _header = _header with { UuidModify = Guid.NewGuid() };
        }

        await _file.WriteAsync(0, _header.ToBytes(), cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _modificationRecorded, _modificationRecorded || renewModification);
    }

    /// <summary>Writes one block map entry; called with the lock held.</summary>
    private async ValueTask WriteEntryAsync(long block, uint value, CancellationToken cancellationToken)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        await _file.WriteAsync(_header.BlockMapOffsetBytes + (block * 4), bytes, cancellationToken).ConfigureAwait(false);
    }
}

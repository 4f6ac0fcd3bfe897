using System.Buffers;
using ImgTool.Block.Devices;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vdi;

/// <summary>
/// `check` for VDI: what QEMU's vdi check counts (entries naming a slot past the block count, slots used by two blocks,
/// a blocks-allocated count that differs from the map's) plus blocks whose data lies past the end of the file and a used
/// slot at or past the header's count, where the next block would be allocated over it. Each is
/// one corruption, as in QEMU, so the exit codes agree (0 clean, 2 corrupt). QEMU repairs nothing (-r is "not supported");
/// imgtool's -r all repairs what can be repaired without guessing:
/// <list type="bullet">
/// <item>an entry past the block count or wholly past the end of the file is dropped (a free block; a zero block in a
/// differencing image, so the parent does not show through where the block read as zeros);</item>
/// <item>a block partly past the end of the file keeps its slot and the file is extended, so it reads as it did;</item>
/// <item>a block sharing its slot gets a copy of the slot's data in a new slot, so both read as before and writes stop
/// changing both;</item>
/// <item>the slots are made dense again (high slots moved into gaps) and the header counts them, so the next block
/// allocated at the end of the file cannot land on a used slot.</item>
/// </list>
/// </summary>
internal sealed partial class VdiImage
{
    public async ValueTask<CheckReport> CheckAsync(CheckRepair repair, CancellationToken cancellationToken = default)
    {
        await _metadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            VdiBlockMapScan scan = VdiBlockMap.Scan(_map, _header, SizeBytes, _file.Length);
            bool countWrong = scan.AllocatedEntries != _header.BlocksAllocated;

            // New blocks go to the slot the header counts up to: a used slot at or above it would be overwritten by the
            // next allocation (QEMU does not look for this; slots with gaps are not made by QEMU or VirtualBox).
            bool nextSlotUsed = scan.MaxSlot >= _header.BlocksAllocated;
            bool repairing = repair.HasFlag(CheckRepair.Errors) && !_file.IsReadOnly && (!scan.IsClean || countWrong || nextSlotUsed);
            List<CheckFinding> findings = Findings(scan, countWrong, repairing);
            if (nextSlotUsed)
            {
                findings.Add(new CheckFinding(CheckSeverity.Corruption, "header", VdiHeader.BlocksAllocatedOffset,
                    $"slot {scan.MaxSlot} is in use but the header counts {_header.BlocksAllocated} allocated blocks: the next block allocated would overwrite it", repairing));
            }

            long repaired = 0;
            if (repairing)
            {
                await RepairAsync(scan, cancellationToken).ConfigureAwait(false);
                repaired = findings.Count;
            }

            return new CheckReport
            {
                Findings = findings,
                Corruptions = findings.Count,
                CorruptionsFixed = repaired,
            };
        }
        finally
        {
            _metadataLock.Release();
        }
    }

    private List<CheckFinding> Findings(VdiBlockMapScan scan, bool countWrong, bool repairing)
    {
        var findings = new List<CheckFinding>();
        long EntryOffset(long block) => _header.BlockMapOffsetBytes + (block * 4);
        foreach (long block in scan.OutOfRange)
        {
            findings.Add(new CheckFinding(CheckSeverity.Corruption, "block map", EntryOffset(block),
                $"block map entry {block} is too large: slot {_map[block]}, the image has {_header.BlockCount}", repairing));
        }

        foreach (long block in scan.PastEnd)
        {
            findings.Add(new CheckFinding(CheckSeverity.Corruption, "block map", EntryOffset(block),
                $"block map entry {block} points past the end of the file (slot {_map[block]} at {VdiBlockMap.SlotOffset(_header, _map[block])}, the file is {_file.Length} bytes)", repairing));
        }

        foreach (var (block, first, slot) in scan.Shared)
        {
            findings.Add(new CheckFinding(CheckSeverity.Corruption, "block map", EntryOffset(block),
                $"block map entries {first} and {block} both use slot {slot}", repairing));
        }

        if (countWrong)
        {
            findings.Add(new CheckFinding(CheckSeverity.Corruption, "header", VdiHeader.BlocksAllocatedOffset,
                $"allocated blocks mismatch: the block map allocates {scan.AllocatedEntries}, the header counts {_header.BlocksAllocated}", repairing));
        }

        return findings;
    }

    /// <summary>Repairs what <paramref name="scan"/> found (see the class remarks); called with the lock held.</summary>
    private async ValueTask RepairAsync(VdiBlockMapScan scan, CancellationToken cancellationToken)
    {
        long fileLength = _file.Length;
        uint dropped = IsDifferencing ? VdiBlockMap.Zero : VdiBlockMap.Free;
        foreach (long block in scan.OutOfRange.Concat(scan.PastEnd))
        {
            uint slot = _map[block];
            if (slot >= _header.BlockCount || VdiBlockMap.SlotOffset(_header, slot) >= fileLength)
            {
                _map[block] = dropped;
            }
        }

        // Later users of a shared slot are set aside and given copies once the others are dense.
        var detached = new List<(long Block, uint Slot)>();
        foreach (var (block, _, slot) in scan.Shared)
        {
            if (_map[block] == slot)
            {
                detached.Add((block, (uint)slot));
                _map[block] = dropped;
            }
        }

        // Dense slots: every used slot at or above the count moves into a gap below it.
        ulong[] used = new ulong[(_header.BlockCount + 63L) / 64];
        long count = 0;
        foreach (uint slot in _map)
        {
            if (VdiBlockMap.IsAllocated(slot))
            {
                used[slot >> 6] |= 1UL << (int)(slot & 63);
                count++;
            }
        }

        var moved = new Dictionary<uint, uint>();
        long gap = 0;
        for (long slot = count; slot < _header.BlockCount; slot++)
        {
            if ((used[slot >> 6] & (1UL << (int)(slot & 63))) == 0)
            {
                continue;
            }

            while ((used[gap >> 6] & (1UL << (int)(gap & 63))) != 0)
            {
                gap++;
            }

            await CopySlotAsync((uint)slot, (uint)gap, cancellationToken).ConfigureAwait(false);
            moved[(uint)slot] = (uint)gap;
            used[gap >> 6] |= 1UL << (int)(gap & 63);
        }

        for (long block = 0; block < _map.Length && moved.Count > 0; block++)
        {
            if (moved.TryGetValue(_map[block], out uint target))
            {
                _map[block] = target;
            }
        }

        foreach (var (block, slot) in detached)
        {
            uint source = moved.GetValueOrDefault(slot, slot);
            await CopySlotAsync(source, (uint)count, cancellationToken).ConfigureAwait(false);
            _map[block] = (uint)count++;
        }

        // The file ends after the last slot: leaked space goes, blocks partly past the old end are completed with zeros.
        _file.SetLength(VdiBlockMap.SlotOffset(_header, count));
        _header = _header with { BlocksAllocated = (uint)count };
        await _file.WriteAsync(_header.BlockMapOffsetBytes, VdiBlockMap.Serialize(_map, _header.BlockMapBytes), cancellationToken).ConfigureAwait(false);
        await WriteHeaderAsync(renewModification: !_modificationRecorded, cancellationToken).ConfigureAwait(false);
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);

        VdiBlockMapScan after = VdiBlockMap.Scan(_map, _header, SizeBytes, _file.Length);
        (_unreadable, _shared) = Problems(after);
        _nextSlot = Math.Max(_header.BlocksAllocated, after.MaxSlot + 1);
    }

    /// <summary>Copies a whole slot (extra data and block) in bounded chunks; what lies past the end of the file reads as zeros.</summary>
    private async ValueTask CopySlotAsync(uint from, uint to, CancellationToken cancellationToken)
    {
        long source = VdiBlockMap.SlotOffset(_header, from);
        long target = VdiBlockMap.SlotOffset(_header, to);
        long span = _header.BlockSpanBytes;
        byte[] chunk = ArrayPool<byte>.Shared.Rent((int)Math.Min(span, VdiLimits.CopyChunkBytes));
        try
        {
            for (long done = 0; done < span;)
            {
                int length = (int)Math.Min(chunk.Length, span - done);
                Memory<byte> part = chunk.AsMemory(0, length);
                await _file.ReadZeroFilledAsync(source + done, part, cancellationToken).ConfigureAwait(false);
                await _file.WriteAsync(target + done, part, cancellationToken).ConfigureAwait(false);
                done += length;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }
}

using System.Buffers.Binary;

namespace ImgTool.Formats.Vdi;

/// <summary>
/// The block map: one little-endian 32-bit entry per block of the virtual disk, giving the block's slot in the data area
/// (its file offset is data offset + slot x (extra + block size) + extra), or one of two markers. Slots are handed out in
/// order, so the allocated slots are 0 .. blocks-allocated - 1 and a new block goes to the end of the file.
/// </summary>
internal static class VdiBlockMap
{
    /// <summary>A block never written (VirtualBox's VDI_IMAGE_BLOCK_FREE, QEMU's VDI_UNALLOCATED): zeros in a base image,
    /// the parent's data in a differencing image.</summary>
    public const uint Free = 0xFFFFFFFF;

    /// <summary>A block that reads as zeros without being stored (VirtualBox's VDI_IMAGE_BLOCK_ZERO, QEMU's VDI_DISCARDED);
    /// in a differencing image it hides the parent's data.</summary>
    public const uint Zero = 0xFFFFFFFE;

    public static bool IsAllocated(uint entry) => entry < Zero;

    public static uint[] Parse(ReadOnlySpan<byte> bytes, long count)
    {
        uint[] entries = new uint[count];
        for (int i = 0; i < entries.Length; i++)
        {
            entries[i] = BinaryPrimitives.ReadUInt32LittleEndian(bytes[(i * 4)..]);
        }

        return entries;
    }

    public static byte[] Serialize(uint[] entries, long paddedBytes)
    {
        byte[] bytes = new byte[Math.Max(paddedBytes, entries.LongLength * 4)];
        for (int i = 0; i < entries.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i * 4), entries[i]);
        }

        return bytes;
    }

    /// <summary>
    /// Looks at every allocated entry once: slots past the block count (QEMU's check: "too large"), blocks whose data
    /// lies past the end of the file, slots used by two blocks, and the count of allocated entries, which should equal
    /// the header's blocks-allocated. Memory: one bit per slot, plus a dictionary only for slots found shared.
    /// </summary>
    public static VdiBlockMapScan Scan(uint[] entries, VdiHeader header, long diskSizeBytes, long fileLength)
    {
        var outOfRange = new List<long>();
        var pastEnd = new List<long>();
        var shared = new List<(long Block, long Slot)>();
        ulong[] used = new ulong[(header.BlockCount + 63L) / 64];
        long allocated = 0;
        long maxSlot = -1;
        for (long block = 0; block < entries.LongLength; block++)
        {
            uint slot = entries[block];
            if (!IsAllocated(slot))
            {
                continue;
            }

            if (slot >= header.BlockCount)
            {
                outOfRange.Add(block);
                continue;
            }

            allocated++;

            if (DataEnd(header, block, slot, diskSizeBytes) > fileLength)
            {
                pastEnd.Add(block);
            }

            maxSlot = Math.Max(maxSlot, slot);
            ulong bit = 1UL << (int)(slot & 63);
            if ((used[slot >> 6] & bit) != 0)
            {
                shared.Add((block, slot));
            }

            used[slot >> 6] |= bit;
        }

        // The first user of each shared slot, for the message and so writes refuse both blocks.
        var firstUsers = new Dictionary<long, long>();
        if (shared.Count > 0)
        {
            var slots = shared.Select(s => s.Slot).ToHashSet();
            for (long block = 0; block < entries.LongLength && firstUsers.Count < slots.Count; block++)
            {
                if (slots.Contains(entries[block]))
                {
                    firstUsers.TryAdd(entries[block], block);
                }
            }
        }

        return new VdiBlockMapScan(outOfRange, pastEnd, shared.Select(s => (s.Block, firstUsers[s.Slot], s.Slot)).ToList(), allocated, maxSlot);
    }

    /// <summary>Where a block stored in <paramref name="slot"/> starts in the file (its extra data first).</summary>
    public static long SlotOffset(VdiHeader header, long slot) => header.DataOffsetBytes + (slot * header.BlockSpanBytes);

    /// <summary>The end of the part of the block the disk uses: the last block of a disk that is not a whole number of
    /// blocks needs only its head in the file.</summary>
    public static long DataEnd(VdiHeader header, long block, long slot, long diskSizeBytes)
    {
        long used = Math.Clamp(diskSizeBytes - (block * header.BlockBytes), 0, header.BlockBytes);
        return SlotOffset(header, slot) + header.BlockExtraBytes + used;
    }
}

/// <summary>What <see cref="VdiBlockMap.Scan"/> found.</summary>
/// <param name="OutOfRange">Blocks whose slot is not below the block count.</param>
/// <param name="PastEnd">Blocks whose data lies (partly) past the end of the file.</param>
/// <param name="Shared">Blocks whose slot an earlier block (<c>First</c>) already uses.</param>
/// <param name="AllocatedEntries">Entries that name a slot below the block count (QEMU's check counts only those).</param>
/// <param name="MaxSlot">The highest slot in range that an entry names, or -1.</param>
internal sealed record VdiBlockMapScan(
    IReadOnlyList<long> OutOfRange,
    IReadOnlyList<long> PastEnd,
    IReadOnlyList<(long Block, long First, long Slot)> Shared,
    long AllocatedEntries,
    long MaxSlot)
{
    public bool IsClean => OutOfRange.Count == 0 && PastEnd.Count == 0 && Shared.Count == 0;
}

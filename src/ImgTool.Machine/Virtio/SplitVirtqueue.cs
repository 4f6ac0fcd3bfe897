using System.Numerics;

namespace ImgTool.Machine.Virtio;

/// <summary>What popping the available ring gave.</summary>
internal enum VirtqPopResult
{
    Empty,
    Chain,

    /// <summary>The driver broke the ring's rules; the device must stop using the queue (2.1.2, NEEDS_RESET).</summary>
    Malformed,
}

/// <summary>
/// A split virtqueue (virtio 1.1, 2.6) seen from the device: pops descriptor chains (direct, or one
/// indirect table, 2.6.5.3) from the available ring and returns them on the used ring. The 16-bit
/// ring indices run free and wrap (2.6.6); slots are index modulo the queue size. Every guest
/// address is checked against RAM, every chain is bounded by the queue size, so a looped or wild
/// chain ends as <see cref="VirtqPopResult.Malformed"/> instead of a hang.
/// </summary>
internal sealed class SplitVirtqueue
{
    public const int MaxSize = 256;

    private readonly GuestRam _ram;

    public SplitVirtqueue(GuestRam ram, int maxSize)
    {
        if (!BitOperations.IsPow2(maxSize) || maxSize > MaxSize)
        {
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, $"a queue size is a power of two up to {MaxSize}");
        }

        _ram = ram;
        DeviceMaxSize = maxSize;
        Chain = new VirtqChain(maxSize);
        Reset();
    }

    /// <summary>The largest size the device offers (queue_size's value after reset, 4.1.4.3).</summary>
    public int DeviceMaxSize { get; }

    /// <summary>The size in use: the driver may lower it to a power of two (modern interface only).</summary>
    public int Size { get; private set; }

    public ulong DescriptorTable { get; set; }

    /// <summary>The available ring (the 1.0 spec's "driver area").</summary>
    public ulong DriverArea { get; set; }

    /// <summary>The used ring (the "device area").</summary>
    public ulong DeviceArea { get; set; }

    public bool Enabled { get; set; }

    /// <summary>VIRTIO_RING_F_INDIRECT_DESC negotiated.</summary>
    public bool IndirectDescriptors { get; set; }

    /// <summary>VIRTIO_RING_F_EVENT_IDX negotiated: used_event/avail_event replace the flags (2.6.7, 2.6.10).</summary>
    public bool EventIndex { get; set; }

    /// <summary>The next available-ring index the device will read.</summary>
    public ushort LastAvailIndex { get; private set; }

    /// <summary>The used-ring index the device last published.</summary>
    public ushort UsedIndex { get; private set; }

    /// <summary>Why the last <see cref="TryPop"/> returned <see cref="VirtqPopResult.Malformed"/>, for a diagnosis.</summary>
    public string? MalformedReason { get; private set; }

    /// <summary>The chain the last successful <see cref="TryPop"/> filled (reused storage).</summary>
    public VirtqChain Chain { get; }

    public void Reset()
    {
        Size = DeviceMaxSize;
        DescriptorTable = DriverArea = DeviceArea = 0;
        Enabled = false;
        IndirectDescriptors = EventIndex = false;
        LastAvailIndex = UsedIndex = 0;
    }

    /// <summary>Sets the size the driver chose; false (unchanged) unless a power of two up to the device's maximum.</summary>
    public bool TrySetSize(int size)
    {
        if (size <= 0 || size > DeviceMaxSize || !BitOperations.IsPow2(size))
        {
            return false;
        }

        Size = size;
        return true;
    }

    /// <summary>The legacy interface: one page frame number places all three parts (2.6.2 legacy layout).</summary>
    public void SetLegacyPageFrame(uint pageFrame)
    {
        DescriptorTable = (ulong)pageFrame << VirtqLayout.LegacyPfnShift;
        DriverArea = DescriptorTable + VirtqLayout.DescriptorTableBytes(Size);
        ulong alignMask = VirtqLayout.LegacyAlignment - 1;
        DeviceArea = (DriverArea + VirtqLayout.AvailBytes(Size) + alignMask) & ~alignMask;
        Enabled = pageFrame != 0;
        LastAvailIndex = UsedIndex = 0;
    }

    /// <summary>Whether the three ring parts lie in RAM.</summary>
    public bool RingsInRam() =>
        _ram.Contains(DescriptorTable, VirtqLayout.DescriptorTableBytes(Size)) &&
        _ram.Contains(DriverArea, VirtqLayout.AvailBytes(Size)) &&
        _ram.Contains(DeviceArea, VirtqLayout.UsedBytes(Size));

    /// <summary>Pops the next available chain into <see cref="Chain"/>.</summary>
    public VirtqPopResult TryPop()
    {
        if (!Enabled)
        {
            return VirtqPopResult.Empty;
        }

        if (!RingsInRam())
        {
            return Malformed("the rings lie outside RAM");
        }

        ushort availIndex = _ram.Read16(DriverArea + VirtqLayout.AvailIndex);
        ushort pending = (ushort)(availIndex - LastAvailIndex);
        if (pending == 0)
        {
            return VirtqPopResult.Empty;
        }

        if (pending > Size)
        {
            // The driver claims more new entries than the ring holds (QEMU: "Guest moved index").
            return Malformed("the available index moved by more than the queue size");
        }

        ushort head = _ram.Read16(DriverArea + VirtqLayout.AvailRing + (ulong)(VirtqLayout.AvailElementBytes * (LastAvailIndex % Size)));
        LastAvailIndex++;
        if (EventIndex)
        {
            // Ask to be notified as soon as the driver adds anything past what was taken (2.6.10.1).
            _ram.Write16(DeviceArea + VirtqLayout.AvailEventOffset(Size), LastAvailIndex);
        }

        string? problem = WalkChain(head);
        return problem is null ? VirtqPopResult.Chain : Malformed(problem);
    }

    /// <summary>Returns a chain to the driver with the bytes the device wrote into it (2.6.8).</summary>
    public void Push(ushort head, uint writtenBytes)
    {
        ulong element = DeviceArea + VirtqLayout.UsedRing + (ulong)(VirtqLayout.UsedElementBytes * (UsedIndex % Size));
        _ram.Write32(element + VirtqLayout.UsedElementId, head);
        _ram.Write32(element + VirtqLayout.UsedElementLength, writtenBytes);
        UsedIndex++;
        // The element is in place before the index that publishes it (2.6.8.2).
        _ram.Write16(DeviceArea + VirtqLayout.UsedIndex, UsedIndex);
    }

    /// <summary>
    /// Whether the driver wants an interrupt for the entries published since <paramref name="usedIndexBefore"/>:
    /// with EVENT_IDX, once the used index passes used_event (vring_need_event, 2.6.7.2); otherwise
    /// unless VIRTQ_AVAIL_F_NO_INTERRUPT is set.
    /// </summary>
    public bool NeedsInterrupt(ushort usedIndexBefore)
    {
        if (UsedIndex == usedIndexBefore)
        {
            return false;
        }

        if (EventIndex)
        {
            ushort usedEvent = _ram.Read16(DriverArea + VirtqLayout.UsedEventOffset(Size));
            return (ushort)(UsedIndex - usedEvent - 1) < (ushort)(UsedIndex - usedIndexBefore);
        }

        return (_ram.Read16(DriverArea + VirtqLayout.AvailFlags) & VirtqLayout.AvailFlagNoInterrupt) == 0;
    }

    private VirtqPopResult Malformed(string reason)
    {
        MalformedReason = reason;
        return VirtqPopResult.Malformed;
    }

    /// <summary>Fills <see cref="Chain"/>; null when the chain is well-formed, else what is wrong with it.</summary>
    private string? WalkChain(ushort head)
    {
        var chain = Chain;
        chain.Start(head);
        if (head >= Size)
        {
            return "a chain head beyond the queue size";
        }

        ulong table = DescriptorTable;
        int tableEntries = Size;
        ushort index = head;
        bool inIndirect = false;
        // A chain longer than its table must revisit a descriptor: that is the loop bound (2.6.5).
        for (int visited = 0; ; visited++)
        {
            if (visited >= tableEntries)
            {
                return "a descriptor chain longer than its table (a loop)";
            }

            ulong descriptor = table + (ulong)(VirtqLayout.DescriptorBytes * index);
            ulong address = _ram.Read64(descriptor + VirtqLayout.DescriptorAddress);
            uint length = _ram.Read32(descriptor + VirtqLayout.DescriptorLength);
            ushort flags = _ram.Read16(descriptor + VirtqLayout.DescriptorFlags);
            ushort next = _ram.Read16(descriptor + VirtqLayout.DescriptorNext);

            if ((flags & VirtqLayout.DescriptorFlagIndirect) != 0)
            {
                // Only the head may point at a table, never with NEXT, never from inside a table (2.6.5.3.1).
                if (!IndirectDescriptors || inIndirect || index != head || visited != 0 ||
                    (flags & VirtqLayout.DescriptorFlagNext) != 0 ||
                    length == 0 || length % VirtqLayout.DescriptorBytes != 0 || length / VirtqLayout.DescriptorBytes > (uint)Size ||
                    !_ram.Contains(address, length))
                {
                    return "an invalid indirect descriptor table";
                }

                table = address;
                tableEntries = (int)(length / VirtqLayout.DescriptorBytes);
                index = 0;
                inIndirect = true;
                visited = -1;
                continue;
            }

            if (!_ram.Contains(address, length))
            {
                return "a buffer outside RAM";
            }

            if (!chain.TryAdd(new VirtqBuffer(address, length, (flags & VirtqLayout.DescriptorFlagWrite) != 0)))
            {
                return "a device-readable buffer after a device-writable one";
            }

            if ((flags & VirtqLayout.DescriptorFlagNext) == 0)
            {
                return null;
            }

            if (next >= tableEntries)
            {
                return "a next index beyond the descriptor table";
            }

            index = next;
        }
    }
}

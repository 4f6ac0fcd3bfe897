using ImgTool.Machine.Memory;
using ImgTool.Machine.Virtio;

namespace ImgTool.Machine.Tests.Virtio;

/// <summary>The device side of the split ring (virtio 1.1, 2.6), with the driver's side written by hand.</summary>
public sealed class SplitVirtqueueTests
{
    private const int Size = 8;
    private const ulong Desc = 0x1000, Avail = 0x2000, Used = 0x3000, Table = 0x4000;

    private readonly PhysicalMemory _memory = new(1u << 20);
    private readonly SplitVirtqueue _queue;
    private ushort _availIndex;

    public SplitVirtqueueTests()
    {
        _queue = new SplitVirtqueue(new GuestRam(_memory), Size)
        {
            DescriptorTable = Desc,
            DriverArea = Avail,
            DeviceArea = Used,
            Enabled = true,
        };
    }

    private void Descriptor(ulong table, int index, ulong address, uint length, ushort flags, ushort next = 0)
    {
        uint at = (uint)(table + (ulong)(16 * index));
        _memory.Write32(at, (uint)address);
        _memory.Write32(at + 4, (uint)(address >> 32));
        _memory.Write32(at + 8, length);
        _memory.Write16(at + 12, flags);
        _memory.Write16(at + 14, next);
    }

    private void Offer(ushort head)
    {
        _memory.Write16((uint)(Avail + 4 + 2ul * (ulong)(_availIndex % Size)), head);
        _availIndex++;
        _memory.Write16((uint)Avail + 2, _availIndex);
    }

    [Fact]
    public void Chain_of_readable_then_writable_buffers_is_popped_in_order()
    {
        Descriptor(Desc, 3, 0x8000, 16, VirtqLayout.DescriptorFlagNext, next: 5);
        Descriptor(Desc, 5, 0x9000, 512, VirtqLayout.DescriptorFlagNext | VirtqLayout.DescriptorFlagWrite, next: 1);
        Descriptor(Desc, 1, 0xA000, 1, VirtqLayout.DescriptorFlagWrite);
        Offer(3);
        Assert.Equal(VirtqPopResult.Chain, _queue.TryPop());
        Assert.Equal(3, _queue.Chain.Head);
        Assert.Equal([new(0x8000, 16, false), new(0x9000, 512, true), new(0xA000, 1, true)], _queue.Chain.Buffers.ToArray());
        Assert.Equal(16ul, _queue.Chain.ReadableBytes);
        Assert.Equal(513ul, _queue.Chain.WritableBytes);
        Assert.Equal(VirtqPopResult.Empty, _queue.TryPop());
    }

    [Fact]
    public void Sixteen_bit_indices_wrap_around_and_slots_follow_modulo_the_size()
    {
        Descriptor(Desc, 0, 0x8000, 4, 0);
        for (int round = 0; round < 70_000; round++)
        {
            Offer(0);
            Assert.Equal(VirtqPopResult.Chain, _queue.TryPop());
            _queue.Push(0, (uint)round);
            ushort used = _memory.Read16((uint)Used + VirtqLayout.UsedIndex);
            Assert.Equal((ushort)(round + 1), used);
            uint element = (uint)(Used + VirtqLayout.UsedRing + 8ul * (ulong)(round % Size));
            Assert.Equal((uint)round, _memory.Read32(element + VirtqLayout.UsedElementLength));
        }

        Assert.Equal(unchecked((ushort)70_000), _queue.LastAvailIndex);
        Assert.Equal(unchecked((ushort)70_000), _queue.UsedIndex);
    }

    [Fact]
    public void Indirect_table_is_walked_when_negotiated()
    {
        _queue.IndirectDescriptors = true;
        Descriptor(Table, 0, 0x8000, 16, VirtqLayout.DescriptorFlagNext, next: 1);
        Descriptor(Table, 1, 0x9000, 4096, VirtqLayout.DescriptorFlagNext | VirtqLayout.DescriptorFlagWrite, next: 2);
        Descriptor(Table, 2, 0xA000, 1, VirtqLayout.DescriptorFlagWrite);
        Descriptor(Desc, 6, Table, 3 * 16, VirtqLayout.DescriptorFlagIndirect);
        Offer(6);
        Assert.Equal(VirtqPopResult.Chain, _queue.TryPop());
        Assert.Equal(6, _queue.Chain.Head);
        Assert.Equal(3, _queue.Chain.Count);
        Assert.Equal(4097ul, _queue.Chain.WritableBytes);
    }

    [Fact]
    public void Indirect_descriptor_without_the_feature_is_malformed()
    {
        Descriptor(Table, 0, 0x8000, 16, 0);
        Descriptor(Desc, 0, Table, 16, VirtqLayout.DescriptorFlagIndirect);
        Offer(0);
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
    }

    [Theory]
    [InlineData(0u)] // empty table
    [InlineData(24u)] // not a multiple of 16
    [InlineData(16u * (Size + 1))] // longer than the queue
    public void Bad_indirect_table_lengths_are_malformed(uint length)
    {
        _queue.IndirectDescriptors = true;
        Descriptor(Desc, 0, Table, length, VirtqLayout.DescriptorFlagIndirect);
        Offer(0);
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
    }

    [Fact]
    public void Nested_indirect_table_is_malformed()
    {
        _queue.IndirectDescriptors = true;
        Descriptor(Table, 0, Table + 0x100, 16, VirtqLayout.DescriptorFlagIndirect);
        Descriptor(Desc, 0, Table, 16, VirtqLayout.DescriptorFlagIndirect);
        Offer(0);
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
    }

    [Fact]
    public void Looped_chain_is_malformed_not_a_hang()
    {
        Descriptor(Desc, 0, 0x8000, 16, VirtqLayout.DescriptorFlagNext, next: 1);
        Descriptor(Desc, 1, 0x9000, 16, VirtqLayout.DescriptorFlagNext, next: 0);
        Offer(0);
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
        Assert.Contains("loop", _queue.MalformedReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Looped_indirect_chain_is_malformed()
    {
        _queue.IndirectDescriptors = true;
        Descriptor(Table, 0, 0x8000, 16, VirtqLayout.DescriptorFlagNext, next: 1);
        Descriptor(Table, 1, 0x8000, 16, VirtqLayout.DescriptorFlagNext, next: 1);
        Descriptor(Desc, 0, Table, 32, VirtqLayout.DescriptorFlagIndirect);
        Offer(0);
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
    }

    [Fact]
    public void Buffer_outside_ram_is_malformed()
    {
        Descriptor(Desc, 0, 0xFFFF_0000, 16, 0);
        Offer(0);
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
        Assert.Equal("a buffer outside RAM", _queue.MalformedReason);
        Descriptor(Desc, 1, (1u << 20) - 8, 16, 0); // straddles the end of RAM
        Offer(1);
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
    }

    [Fact]
    public void Next_index_beyond_the_table_and_head_beyond_the_queue_are_malformed()
    {
        Descriptor(Desc, 0, 0x8000, 16, VirtqLayout.DescriptorFlagNext, next: Size);
        Offer(0);
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
        Offer(Size);
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
    }

    [Fact]
    public void Readable_buffer_after_a_writable_one_is_malformed()
    {
        Descriptor(Desc, 0, 0x8000, 1, VirtqLayout.DescriptorFlagNext | VirtqLayout.DescriptorFlagWrite, next: 1);
        Descriptor(Desc, 1, 0x9000, 16, 0);
        Offer(0);
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
    }

    [Fact]
    public void Available_index_more_than_a_ring_ahead_is_malformed()
    {
        _memory.Write16((uint)Avail + 2, Size + 1);
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
    }

    [Fact]
    public void Rings_outside_ram_are_malformed()
    {
        _queue.DeviceArea = (1u << 20) - 8;
        Assert.Equal(VirtqPopResult.Malformed, _queue.TryPop());
    }

    [Fact]
    public void No_interrupt_flag_suppresses_the_interrupt_without_event_idx()
    {
        Descriptor(Desc, 0, 0x8000, 4, 0);
        Offer(0);
        _queue.TryPop();
        _queue.Push(0, 0);
        Assert.True(_queue.NeedsInterrupt(0));
        _memory.Write16((uint)Avail + VirtqLayout.AvailFlags, VirtqLayout.AvailFlagNoInterrupt);
        Assert.False(_queue.NeedsInterrupt(0));
        Assert.False(_queue.NeedsInterrupt(_queue.UsedIndex)); // nothing new
    }

    [Fact]
    public void Event_idx_interrupts_only_when_used_index_passes_used_event_and_publishes_avail_event()
    {
        _queue.EventIndex = true;
        Descriptor(Desc, 0, 0x8000, 4, 0);
        // The driver wants an interrupt once entry 2 (the third) is used.
        _memory.Write16((uint)(Avail + VirtqLayout.UsedEventOffset(Size)), 2);
        for (int i = 0; i < 3; i++)
        {
            Offer(0);
        }

        ushort before = _queue.UsedIndex;
        Assert.Equal(VirtqPopResult.Chain, _queue.TryPop());
        Assert.Equal(1, _memory.Read16((uint)(Used + VirtqLayout.AvailEventOffset(Size))));
        _queue.Push(0, 0);
        Assert.False(_queue.NeedsInterrupt(before));
        _queue.TryPop();
        _queue.Push(0, 0);
        Assert.False(_queue.NeedsInterrupt(before));
        _queue.TryPop();
        _queue.Push(0, 0);
        Assert.True(_queue.NeedsInterrupt(before));
        Assert.Equal(3, _memory.Read16((uint)(Used + VirtqLayout.AvailEventOffset(Size))));
        // The flag no longer matters with EVENT_IDX.
        _memory.Write16((uint)Avail + VirtqLayout.AvailFlags, VirtqLayout.AvailFlagNoInterrupt);
        Assert.True(_queue.NeedsInterrupt(before));
    }

    [Fact]
    public void Legacy_page_frame_places_the_rings_with_4096_byte_alignment()
    {
        var queue = new SplitVirtqueue(new GuestRam(_memory), 128);
        queue.SetLegacyPageFrame(0x10);
        Assert.Equal(0x10000ul, queue.DescriptorTable);
        Assert.Equal(0x10000ul + 128 * 16, queue.DriverArea);
        Assert.Equal(0x11000ul, queue.DeviceArea); // 0x10800 + 6 + 256 rounded up to a page
        Assert.True(queue.Enabled);
    }

    [Fact]
    public void Queue_size_must_be_a_power_of_two_no_larger_than_the_maximum()
    {
        Assert.False(_queue.TrySetSize(6));
        Assert.False(_queue.TrySetSize(16));
        Assert.False(_queue.TrySetSize(0));
        Assert.True(_queue.TrySetSize(4));
        Assert.Equal(4, _queue.Size);
        _queue.Reset();
        Assert.Equal(Size, _queue.Size);
    }
}

using System.Runtime.CompilerServices;
using Iced.Intel;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Cpu;

/// <summary>
/// Decoded instructions per physical 4 KiB page of RAM. Iced decodes some 30-50 M instructions/s,
/// a cache hit costs an array index, so code is decoded once and run many times. A page's entry is
/// dropped on any write to it (PhysicalMemory calls back), so self-modifying code and code loaded by
/// DMA are seen. An instruction that crosses the end of a page is never cached.
/// </summary>
internal sealed class DecodeCache
{
    // F3 0F BC/BD decode as BSF/BSR (with a REP prefix), as a P6 runs them, not as TZCNT/LZCNT.
    internal const DecoderOptions Options = DecoderOptions.NoMPFX_0FBC | DecoderOptions.NoMPFX_0FBD;

    private readonly PhysicalMemory _memory;
    private readonly Dictionary<uint, PageEntry> _pages = [];
    private readonly SpanReader _reader = new();
    private readonly Decoder _decoder16;
    private readonly Decoder _decoder32;
    private uint _lastPage = uint.MaxValue;
    private PageEntry? _lastEntry;

    public DecodeCache(PhysicalMemory memory)
    {
        _memory = memory;
        _memory.CodeWritten = InvalidateRange;
        _decoder16 = Decoder.Create(16, _reader, Options);
        _decoder32 = Decoder.Create(32, _reader, Options);
    }

    public long Decodes { get; private set; }

    /// <summary>
    /// Drops the decoded instructions that a write of lengthBytes at a physical address overlaps: those
    /// starting up to 14 bytes before it (an instruction is at most 15 bytes) through its last byte.
    /// </summary>
    public void InvalidateRange(uint address, int lengthBytes)
    {
        uint first = address >= 14 ? address - 14 : 0;
        uint last = address + (uint)lengthBytes - 1;
        for (uint page = first >> PhysicalMemory.PageShift; page <= last >> PhysicalMemory.PageShift; page++)
        {
            if (!_pages.TryGetValue(page, out var entry))
            {
                continue;
            }

            uint pageStart = page << PhysicalMemory.PageShift;
            int from = (int)(Math.Max(first, pageStart) - pageStart);
            int to = (int)(Math.Min(last, pageStart + PhysicalMemory.PageSizeBytes - 1) - pageStart);
            if (lengthBytes > 64 || !entry.Clear(from, to))
            {
                Invalidate(page);
                _memory.ClearCodePage(page);
            }
        }
    }

    public void Invalidate(uint page)
    {
        _pages.Remove(page);
        if (page == _lastPage)
        {
            _lastPage = uint.MaxValue;
            _lastEntry = null;
        }
    }

    public void InvalidateAll()
    {
        foreach (var page in _pages.Keys)
        {
            _memory.ClearCodePage(page);
        }

        _pages.Clear();
        _lastPage = uint.MaxValue;
        _lastEntry = null;
    }

    /// <summary>
    /// The instruction at a physical address, decoded with IP = its page offset (branch targets are
    /// taken relative to NextIP by the interpreter), as a reference into the page's cache: no copy of
    /// the 40-byte instruction per step. A null reference when the bytes are not cacheable RAM or the
    /// instruction crosses the page; the caller then decodes from fetched bytes. The reference stays
    /// valid while the instruction executes even if a write drops the page (the array lives on).
    /// </summary>
    public ref readonly Instruction TryGet(uint physical, int bitness)
    {
        uint page = physical >> PhysicalMemory.PageShift;
        int offset = (int)(physical & (PhysicalMemory.PageSizeBytes - 1));
        PageEntry? entry = _lastEntry;
        if (page != _lastPage || entry is null)
        {
            entry = LookUpPage(page);
            if (entry is null)
            {
                return ref Unsafe.NullRef<Instruction>();
            }
        }

        int slot = bitness == 32 ? offset + (int)PhysicalMemory.PageSizeBytes : offset;
        int index = entry.Index[slot];
        if (index != 0)
        {
            return ref entry.Items[index - 1];
        }

        return ref DecodeInto(entry, page, offset, slot, bitness);
    }

    /// <summary>The page's entry, made on first use; remembered as the last page (a write barrier only when the page changes).</summary>
    private PageEntry? LookUpPage(uint page)
    {
        if (!_pages.TryGetValue(page, out PageEntry? entry))
        {
            if (!_memory.MarkCodePage(page))
            {
                return null;
            }

            entry = new PageEntry();
            _pages.Add(page, entry);
        }

        _lastPage = page;
        _lastEntry = entry;
        return entry;
    }

    private ref readonly Instruction DecodeInto(PageEntry entry, uint page, int offset, int slot, int bitness)
    {
        if (!_memory.TryGetRamPage(page, out var bytes))
        {
            return ref Unsafe.NullRef<Instruction>();
        }

        _reader.Set(bytes[offset..]);
        var decoder = bitness == 32 ? _decoder32 : _decoder16;
        decoder.IP = (ulong)offset;
        decoder.Decode(out Instruction instruction);
        Decodes++;
        if (decoder.LastError == DecoderError.NoMoreBytes)
        {
            return ref Unsafe.NullRef<Instruction>();
        }

        return ref entry.Add(slot, instruction);
    }

    /// <summary>Decodes from bytes the caller fetched (page-crossing or non-RAM code); not cached.</summary>
    public Instruction DecodeUncached(ReadOnlySpan<byte> bytes, int bitness, ulong ip)
    {
        _reader.Set(bytes);
        var decoder = bitness == 32 ? _decoder32 : _decoder16;
        decoder.IP = ip;
        decoder.Decode(out var instruction);
        Decodes++;
        return instruction;
    }

    private sealed class PageEntry
    {
        // Slot = page offset (16-bit code) or page offset + 4096 (32-bit code); value = item index + 1.
        public readonly ushort[] Index = new ushort[2 * PhysicalMemory.PageSizeBytes];
        public Instruction[] Items = new Instruction[64];
        private int _count;

        /// <summary>Clears the slots of offsets from..to; false when the page should be dropped whole.</summary>
        public bool Clear(int from, int to)
        {
            int size = (int)PhysicalMemory.PageSizeBytes;
            for (int offset = from; offset <= to; offset++)
            {
                Index[offset] = 0;
                Index[offset + size] = 0;
            }

            // Stale items stay in the array until it fills; a page rewritten this often is dropped.
            return _count < 4096;
        }

        public ref Instruction Add(int slot, Instruction instruction)
        {
            if (_count == Items.Length)
            {
                Array.Resize(ref Items, _count * 2);
            }

            ref Instruction item = ref Items[_count];
            item = instruction;
            Index[slot] = (ushort)(++_count);
            return ref item;
        }
    }

    /// <summary>Iced reads code through this; it stops at the end of the span (NoMoreBytes).</summary>
    private sealed class SpanReader : CodeReader
    {
        private readonly byte[] _buffer = new byte[16];
        private int _length;
        private int _position;

        public void Set(ReadOnlySpan<byte> bytes)
        {
            // An x86 instruction is at most 15 bytes: copying 16 is enough and keeps the reader allocation-free.
            _length = Math.Min(bytes.Length, _buffer.Length);
            bytes[.._length].CopyTo(_buffer);
            _position = 0;
        }

        public override int ReadByte() => _position < _length ? _buffer[_position++] : -1;
    }
}

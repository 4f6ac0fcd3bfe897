using Iced.Intel;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Cpu.Decode;

/// <summary>
/// Decoded blocks keyed by physical address and code size. Iced decodes some 30-50 M instructions/s; a block is
/// decoded and lowered once and then run from a direct-mapped table. A block never crosses its page. Each page
/// with blocks keeps a bitmap of the bytes its instructions occupy: a write that touches one of them (a CPU store,
/// DMA, virtio) drops every block of the page, so self-modifying code, the kernel's alternatives patching and
/// code loaded by DMA are seen, while data that merely shares a page with code costs nothing.
/// </summary>
internal sealed class BlockCache
{
    // F3 0F BC/BD decode as BSF/BSR (with a REP prefix), as a P6 runs them, not as TZCNT/LZCNT.
    internal const DecoderOptions Options = DecoderOptions.NoMPFX_0FBC | DecoderOptions.NoMPFX_0FBD;

    public const int MaxOpsPerBlock = 64;
    private const int TableBits = 16;
    private const int PageBytes = (int)PhysicalMemory.PageSizeBytes;
    private const int MaxInstructionBytes = 15;

    private readonly X86Cpu _cpu;
    private readonly PhysicalMemory _memory;
    private readonly CodeBlock?[] _table = new CodeBlock?[1 << TableBits];
    private readonly Dictionary<uint, CodePage> _pages = [];
    private readonly byte[] _buffer = new byte[PageBytes + MaxInstructionBytes];
    private readonly BufferReader _reader;
    private readonly Decoder _decoder16;
    private readonly Decoder _decoder32;
    private readonly MicroOp[] _scratch = new MicroOp[MaxOpsPerBlock];

    public BlockCache(X86Cpu cpu, PhysicalMemory memory)
    {
        _cpu = cpu;
        _memory = memory;
        _reader = new BufferReader(_buffer);
        _decoder16 = Decoder.Create(16, _reader, Options);
        _decoder32 = Decoder.Create(32, _reader, Options);
    }

    public long BlocksDecoded { get; private set; }

    /// <summary>x87 instructions as lowered for the FPU (ops refer to them by index).</summary>
    public List<X87.X87Instruction> X87Table { get; } = [];

    public long Invalidations { get; private set; }

    /// <summary>The block at CS:EIP, or null when the fetch faulted (raised) or the code must run uncached.</summary>
    public CodeBlock? Lookup()
    {
        ref readonly SegmentRegister cs = ref _cpu.S[X86Cpu.CS];
        uint eip = _cpu.Eip;
        if (eip > cs.Limit)
        {
            return null;
        }

        uint linear = cs.Base + eip;
        if (!TranslateFetch(linear, out uint physical))
        {
            return null;
        }

        bool code32 = cs.Big;
        int slot = Slot(physical, code32);
        var block = _table[slot];
        if (block is null || block.Physical != physical || block.Code32 != code32)
        {
            block = FindOnPage(physical, code32) ?? Decode(physical, code32);
            if (block is null)
            {
                return null;
            }

            _table[slot] = block;
        }

        // The whole block must lie inside CS (and, in 16-bit code, below the 64 KiB wrap).
        uint lastOffset = eip + (uint)block.LengthBytes - 1;
        if (lastOffset > cs.Limit || lastOffset < eip || (!code32 && lastOffset > 0xFFFF))
        {
            return null;
        }

        return block;
    }

    private bool TranslateFetch(uint linear, out uint physical)
    {
        if (!_cpu.PagingEnabled)
        {
            physical = linear & _memory.A20Mask;
            return true;
        }

        return _cpu.TryTranslateFromTlb(linear, out physical) || _cpu.Translate(linear, AccessKind.Execute, supervisorAccess: false, out physical);
    }

    private static int Slot(uint physical, bool code32) =>
        (int)((physical ^ (physical >> TableBits) ^ (code32 ? 0x2A5u : 0)) & ((1 << TableBits) - 1));

    /// <summary>The valid 32-bit block already decoded at this physical address, or null (the translator's region builder asks).</summary>
    public CodeBlock? FindDecoded(uint physical) => FindOnPage(physical, code32: true);

    private CodeBlock? FindOnPage(uint physical, bool code32)
    {
        if (!_pages.TryGetValue(physical >> PhysicalMemory.PageShift, out var page))
        {
            return null;
        }

        for (var block = page.Blocks; block is not null; block = block.NextOnPage)
        {
            if (block.Physical == physical && block.Code32 == code32)
            {
                return block;
            }
        }

        return null;
    }

    private unsafe CodeBlock? Decode(uint physical, bool code32)
    {
        uint pageNumber = physical >> PhysicalMemory.PageShift;
        int offset = (int)(physical & (PhysicalMemory.PageSizeBytes - 1));
        int available = PageBytes - offset;
        _memory.ReadBlock(physical, _buffer.AsSpan(0, available));
        _reader.Reset(available);
        var decoder = code32 ? _decoder32 : _decoder16;
        decoder.IP = 0;
        int count = 0;
        int length = 0;
        while (count < MaxOpsPerBlock)
        {
            decoder.Decode(out var instruction);
            if (decoder.LastError == DecoderError.NoMoreBytes)
            {
                break; // the next instruction straddles the page: it runs uncached
            }

            ref MicroOp op = ref _scratch[count];
            bool ends = Lowering.Lower(in instruction, ref op, code32, X87Table);
            count++;
            length += instruction.Length;
            if (ends || length >= available)
            {
                break;
            }
        }

        if (count == 0)
        {
            return null;
        }

        var block = new CodeBlock(_scratch.AsSpan(0, count).ToArray(), count, physical, code32, length);
        BlocksDecoded++;
        if (!_pages.TryGetValue(pageNumber, out var page))
        {
            page = new CodePage();
            _pages[pageNumber] = page;
            if (_memory.MarkCodePage(pageNumber))
            {
                _cpu.FlushTlbWritesTo(pageNumber << PhysicalMemory.PageShift);
            }
        }

        page.Cover(offset, length);
        block.NextOnPage = page.Blocks;
        page.Blocks = block;
        return block;
    }

    /// <summary>Whether a physical page holds decoded code (such pages get no TLB write entry).</summary>
    public bool HoldsCode(uint physicalPageAddress) => _pages.ContainsKey(physicalPageAddress >> PhysicalMemory.PageShift);

    /// <summary>A write of lengthBytes at a physical address: drops the page's blocks if it touches decoded bytes.</summary>
    public void InvalidateRange(uint address, int lengthBytes)
    {
        uint last = address + (uint)Math.Max(lengthBytes, 1) - 1;
        for (uint pageNumber = address >> PhysicalMemory.PageShift; pageNumber <= last >> PhysicalMemory.PageShift; pageNumber++)
        {
            if (!_pages.TryGetValue(pageNumber, out var page))
            {
                continue;
            }

            uint pageStart = pageNumber << PhysicalMemory.PageShift;
            int from = (int)(Math.Max(address, pageStart) - pageStart);
            int to = (int)(Math.Min(last, pageStart + PhysicalMemory.PageSizeBytes - 1) - pageStart);
            if (page.Touches(from, to))
            {
                DropPage(pageNumber, page);
            }

            if (pageNumber == uint.MaxValue >> PhysicalMemory.PageShift)
            {
                break;
            }
        }
    }

    private void DropPage(uint pageNumber, CodePage page)
    {
        for (var block = page.Blocks; block is not null; block = block.NextOnPage)
        {
            block.Valid = false;
            block.Translated = null;
            int slot = Slot(block.Physical, block.Code32);
            if (ReferenceEquals(_table[slot], block))
            {
                _table[slot] = null;
            }
        }

        _pages.Remove(pageNumber);
        _memory.ClearCodePage(pageNumber);
        Invalidations++;
        _cpu.EndBlock = true;
    }

    public void InvalidateAll()
    {
        foreach (var pageNumber in _pages.Keys)
        {
            _memory.ClearCodePage(pageNumber);
        }

        _pages.Clear();
        Array.Clear(_table);
    }

    /// <summary>
    /// Decodes the single instruction at CS:EIP from linear memory, with the CS limit and the 16-bit IP wrap
    /// applied byte by byte. False with the fault raised when a byte the instruction needs cannot be fetched.
    /// </summary>
    public bool DecodeOne(out MicroOp op)
    {
        op = default;
        bool code32 = _cpu.Code32;
        ref readonly SegmentRegister cs = ref _cpu.S[X86Cpu.CS];
        uint ipMask = code32 ? 0xFFFFFFFF : 0xFFFF;
        int fetched = 0;
        while (fetched < MaxInstructionBytes)
        {
            uint offset = (_cpu.Eip + (uint)fetched) & ipMask;
            if (offset > cs.Limit)
            {
                break;
            }

            _buffer[fetched] = (byte)_cpu.ReadLinear(cs.Base + offset, 1);
            if (_cpu.FaultPending)
            {
                // A fetch fault counts only if the instruction needs the byte: decode what was fetched first.
                if (fetched > 0 && TryDecode(fetched, code32, ref op))
                {
                    _cpu.CancelFault();
                    return true;
                }

                return false;
            }

            fetched++;
            if (TryDecode(fetched, code32, ref op))
            {
                return true;
            }
        }

        // Out of bytes: beyond the CS limit (#GP(0)) or longer than 15 bytes (#GP(0) as well, SDM vol. 2, 2.3.11).
        _cpu.RaiseFault(Vector.GP, 0);
        return false;
    }

    private bool TryDecode(int available, bool code32, ref MicroOp op)
    {
        _reader.Reset(available);
        var decoder = code32 ? _decoder32 : _decoder16;
        decoder.IP = 0;
        decoder.Decode(out var instruction);
        if (decoder.LastError == DecoderError.NoMoreBytes)
        {
            return false;
        }

        Lowering.Lower(in instruction, ref op, code32, X87Table);
        return true;
    }

    /// <summary>Copies the bytes at CS:EIP without faulting (unmapped bytes read as 0): for traces.</summary>
    public void PeekBytes(uint eip, Span<byte> destination)
    {
        ref readonly SegmentRegister cs = ref _cpu.S[X86Cpu.CS];
        uint ipMask = cs.Big ? 0xFFFFFFFF : 0xFFFF;
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = _cpu.Probe(cs.Base + ((eip + (uint)i) & ipMask), out uint physical) ? _memory.Read8(physical) : (byte)0;
        }
    }

    /// <summary>The instruction at CS:eip as text, for a diagnosis.</summary>
    public string Describe(uint eip)
    {
        Span<byte> bytes = stackalloc byte[MaxInstructionBytes];
        PeekBytes(eip, bytes);
        var reader = new BufferReader(bytes.ToArray());
        reader.Reset(bytes.Length);
        var decoder = Decoder.Create(_cpu.Code32 ? 32 : 16, reader, eip, Options);
        decoder.Decode(out var instruction);
        return instruction.Code == Code.INVALID ? $"invalid opcode {Convert.ToHexString(bytes[..4])}" : $"'{instruction}'";
    }

    /// <summary>A page's decoded blocks and which of its bytes they cover.</summary>
    private sealed class CodePage
    {
        private readonly ulong[] _covered = new ulong[PageBytes / 64];

        public CodeBlock? Blocks;

        public void Cover(int from, int lengthBytes)
        {
            for (int i = from; i < from + lengthBytes && i < PageBytes; i++)
            {
                _covered[i >> 6] |= 1ul << (i & 63);
            }
        }

        public bool Touches(int from, int to)
        {
            for (int i = from; i <= to; i++)
            {
                if ((_covered[i >> 6] & (1ul << (i & 63))) != 0)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>Iced's byte source over a buffer with a settable end.</summary>
    private sealed class BufferReader(byte[] buffer) : CodeReader
    {
        private int _position;
        private int _end;

        public void Reset(int end)
        {
            _position = 0;
            _end = end;
        }

        public override int ReadByte() => _position < _end ? buffer[_position++] : -1;
    }
}

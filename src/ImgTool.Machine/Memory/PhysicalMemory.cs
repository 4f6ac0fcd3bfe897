using System.Buffers.Binary;

namespace ImgTool.Machine.Memory;

/// <summary>A device that answers memory-mapped accesses (ROM reads, MMIO registers).</summary>
internal interface IMemoryRegion
{
    uint Read(uint offsetBytes, int sizeBytes);

    void Write(uint offsetBytes, int sizeBytes, uint value);
}

/// <summary>
/// The physical address space: RAM from 0, then regions (ROM, MMIO) placed anywhere above it or in
/// the legacy window 0xA0000-0xFFFFF. Every write to RAM that holds decoded code invalidates that
/// page's decoded instructions (CPU stores, DMA and virtio all come through here).
/// </summary>
internal sealed unsafe class PhysicalMemory
{
    public const int PageShift = 12;
    public const uint PageSizeBytes = 1u << PageShift;

    /// <summary>The legacy window where VGA memory and option/BIOS ROMs live on a PC.</summary>
    public const uint LegacyWindowStart = 0xA0000;
    public const uint LegacyWindowEnd = 0x100000;

    private readonly byte[] _ram;
    private readonly byte* _ramPointer;
    private uint _a20Mask = 0xFFFFFFFF;
    private readonly uint _ramSizeBytes;
    private readonly List<(uint Start, uint Length, IMemoryRegion Region)> _regions = [];

    // One flag per RAM page: set when the decode cache holds instructions from that page.
    private readonly bool[] _codePage;

    // Per 16 KiB block of the legacy window: when set, reads (or writes) of the block go to the
    // regions (the BIOS ROM alias), not RAM. The i440FX PAM registers set them (PamRegisters).
    private readonly bool[] _legacyToRegion = new bool[(LegacyWindowEnd - LegacyWindowStart) >> 14];
    private readonly bool[] _legacyWriteToRegion = new bool[(LegacyWindowEnd - LegacyWindowStart) >> 14];
    private bool _anyLegacyRouted;

    public PhysicalMemory(uint ramSizeBytes)
    {
        _ramSizeBytes = ramSizeBytes;
        // Pinned: the CPU's TLB hands out host pointers into it.
        _ram = GC.AllocateArray<byte>((int)ramSizeBytes, pinned: true);
        _ramPointer = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_ram));
        _codePage = new bool[(ramSizeBytes + PageSizeBytes - 1) >> PageShift];
    }

    public uint RamSizeBytes => _ramSizeBytes;

    /// <summary>0xFFFFFFFF with A20 enabled, 0xFFEFFFFF with it masked (the 8086 wrap at 1 MiB).</summary>
    public uint A20Mask
    {
        get => _a20Mask;
        set
        {
            if (value != _a20Mask)
            {
                _a20Mask = value;
                LayoutChanged?.Invoke();
            }
        }
    }

    /// <summary>Called when what an address means changes (A20, PAM routing): the CPU drops its TLB and decoded code.</summary>
    public Action? LayoutChanged { get; set; }

    /// <summary>
    /// The host address of a physical page when it is plain RAM in that direction (not routed to a region), else
    /// null: the TLB enters only such pages.
    /// </summary>
    public byte* RamPagePointer(uint pageAddress, bool forWrite)
    {
        if (pageAddress >= _ramSizeBytes || _ramSizeBytes - pageAddress < PageSizeBytes)
        {
            return null;
        }

        if (forWrite ? IsRoutedLegacyWrite(pageAddress) : IsRoutedLegacy(pageAddress))
        {
            return null;
        }

        return _ramPointer + pageAddress;
    }

    /// <summary>Called with the physical address and length of a write that lands on a page holding decoded code.</summary>
    public Action<uint, int>? CodeWritten { get; set; }

    public Span<byte> Ram => _ram;

    public void AddRegion(uint start, uint length, IMemoryRegion region) => _regions.Add((start, length, region));

    /// <summary>Removes every mapping of <paramref name="region"/> (a PCI memory BAR that moves or stops decoding).</summary>
    public void RemoveRegion(IMemoryRegion region) => _regions.RemoveAll(entry => ReferenceEquals(entry.Region, region));

    /// <summary>Routes a 16 KiB block of the legacy window to the regions (true) or to RAM (false).</summary>
    public void RouteLegacyBlock(uint address, bool readToRegion, bool writeToRegion)
    {
        _legacyToRegion[(address - LegacyWindowStart) >> 14] = readToRegion;
        _legacyWriteToRegion[(address - LegacyWindowStart) >> 14] = writeToRegion;
        _anyLegacyRouted = Array.IndexOf(_legacyToRegion, true) >= 0 || Array.IndexOf(_legacyWriteToRegion, true) >= 0;
        LayoutChanged?.Invoke();
    }

    private bool IsRoutedLegacyWrite(uint address) =>
        _anyLegacyRouted && address >= LegacyWindowStart && address < LegacyWindowEnd &&
        _legacyWriteToRegion[(address - LegacyWindowStart) >> 14];

    private bool IsPlainRamWrite(uint address, int sizeBytes) =>
        address <= _ramSizeBytes - (uint)sizeBytes && !IsRoutedLegacyWrite(address) && !IsRoutedLegacyWrite(address + (uint)sizeBytes - 1);

    /// <summary>Marks a RAM page as holding decoded code; false when the page is not plain RAM.</summary>
    public bool MarkCodePage(uint page)
    {
        if (page >= (uint)_codePage.Length || IsRoutedLegacy(page << PageShift))
        {
            return false;
        }

        _codePage[page] = true;
        return true;
    }

    public void ClearCodePage(uint page)
    {
        if (page < (uint)_codePage.Length)
        {
            _codePage[page] = false;
        }
    }

    /// <summary>The RAM bytes of a page when it is plain RAM (the decode cache reads code from here).</summary>
    public bool TryGetRamPage(uint page, out ReadOnlySpan<byte> bytes)
    {
        uint start = page << PageShift;
        if (page < (uint)_codePage.Length && !IsRoutedLegacy(start))
        {
            bytes = _ram.AsSpan((int)start, (int)Math.Min(PageSizeBytes, _ramSizeBytes - start));
            return true;
        }

        bytes = default;
        return false;
    }

    private bool IsRoutedLegacy(uint address) =>
        _anyLegacyRouted && address >= LegacyWindowStart && address < LegacyWindowEnd &&
        _legacyToRegion[(address - LegacyWindowStart) >> 14];

    private bool IsPlainRam(uint address, int sizeBytes) =>
        address <= _ramSizeBytes - (uint)sizeBytes && !IsRoutedLegacy(address) &&
        ((address & (PageSizeBytes - 1)) <= PageSizeBytes - (uint)sizeBytes || !IsRoutedLegacy(address + (uint)sizeBytes - 1));

    public byte Read8(uint address)
    {
        address &= A20Mask;
        return IsPlainRam(address, 1) ? _ram[address] : (byte)ReadSlow(address, 1);
    }

    public ushort Read16(uint address)
    {
        address &= A20Mask;
        return IsPlainRam(address, 2) ? BinaryPrimitives.ReadUInt16LittleEndian(_ram.AsSpan((int)address)) : (ushort)ReadBytes(address, 2);
    }

    public uint Read32(uint address)
    {
        address &= A20Mask;
        return IsPlainRam(address, 4) ? BinaryPrimitives.ReadUInt32LittleEndian(_ram.AsSpan((int)address)) : ReadBytes(address, 4);
    }

    public uint Read(uint address, int sizeBytes) => sizeBytes switch
    {
        1 => Read8(address),
        2 => Read16(address),
        _ => Read32(address),
    };

    public void Write8(uint address, byte value)
    {
        address &= A20Mask;
        if (IsPlainRamWrite(address, 1))
        {
            _ram[address] = value;
            NoteWrite(address, 1);
        }
        else
        {
            WriteSlow(address, 1, value);
        }
    }

    public void Write16(uint address, ushort value)
    {
        address &= A20Mask;
        if (IsPlainRamWrite(address, 2))
        {
            BinaryPrimitives.WriteUInt16LittleEndian(_ram.AsSpan((int)address), value);
            NoteWrite(address, 2);
        }
        else
        {
            WriteBytes(address, 2, value);
        }
    }

    public void Write32(uint address, uint value)
    {
        address &= A20Mask;
        if (IsPlainRamWrite(address, 4))
        {
            BinaryPrimitives.WriteUInt32LittleEndian(_ram.AsSpan((int)address), value);
            NoteWrite(address, 4);
        }
        else
        {
            WriteBytes(address, 4, value);
        }
    }

    public void Write(uint address, int sizeBytes, uint value)
    {
        switch (sizeBytes)
        {
            case 1: Write8(address, (byte)value); break;
            case 2: Write16(address, (ushort)value); break;
            default: Write32(address, value); break;
        }
    }

    /// <summary>Copies guest memory out (DMA reads by devices).</summary>
    public void ReadBlock(uint address, Span<byte> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = Read8(address + (uint)i);
        }
    }

    /// <summary>Copies into guest memory (DMA writes by devices), invalidating decoded code it overwrites.</summary>
    public void WriteBlock(uint address, ReadOnlySpan<byte> source)
    {
        address &= A20Mask;
        if (IsPlainRamWrite(address, Math.Max(1, source.Length)) && (ulong)address + (ulong)source.Length <= _ramSizeBytes)
        {
            source.CopyTo(_ram.AsSpan((int)address));
            for (uint page = address >> PageShift; source.Length > 0 && page <= (address + (uint)source.Length - 1) >> PageShift; page++)
            {
                uint start = Math.Max(address, page << PageShift);
                uint end = Math.Min(address + (uint)source.Length, (page + 1) << PageShift);
                NoteWrite(start, (int)(end - start));
            }

            return;
        }

        for (int i = 0; i < source.Length; i++)
        {
            Write8(address + (uint)i, source[i]);
        }
    }

    private void NoteWrite(uint address, int lengthBytes)
    {
        // Data often shares a page with code (SeaBIOS keeps variables beside its code in the F
        // segment), so the decode cache drops only the instructions the write overlaps.
        if (_codePage[address >> PageShift] || _codePage[(address + (uint)lengthBytes - 1) >> PageShift])
        {
            CodeWritten?.Invoke(address, lengthBytes);
        }
    }

    private uint ReadBytes(uint address, int sizeBytes)
    {
        // An access straddling RAM and a region (or two regions) is split into bytes, as the bus does.
        if (FindRegion(address, out var start, out var region) && address - start <= uint.MaxValue - (uint)sizeBytes &&
            FindRegion(address + (uint)sizeBytes - 1, out var endStart, out _) && endStart == start)
        {
            return region!.Read(address - start, sizeBytes);
        }

        uint value = 0;
        for (int i = 0; i < sizeBytes; i++)
        {
            value |= (uint)Read8(address + (uint)i) << (8 * i);
        }

        return value;
    }

    private void WriteBytes(uint address, int sizeBytes, uint value)
    {
        if (FindRegion(address, out var start, out var region) &&
            FindRegion(address + (uint)sizeBytes - 1, out var endStart, out _) && endStart == start)
        {
            region!.Write(address - start, sizeBytes, value);
            return;
        }

        for (int i = 0; i < sizeBytes; i++)
        {
            Write8(address + (uint)i, (byte)(value >> (8 * i)));
        }
    }

    private uint ReadSlow(uint address, int sizeBytes) =>
        FindRegion(address, out var start, out var region) ? region!.Read(address - start, sizeBytes) : 0xFFFFFFFF;

    private void WriteSlow(uint address, int sizeBytes, uint value)
    {
        if (FindRegion(address, out var start, out var region))
        {
            region!.Write(address - start, sizeBytes, value);
        }
    }

    private bool FindRegion(uint address, out uint start, out IMemoryRegion? region)
    {
        // Regions are few (ROM, its alias, a few BARs): a linear scan is the simplest correct lookup.
        foreach (var (s, length, r) in _regions)
        {
            if (address - s < length)
            {
                start = s;
                region = r;
                return true;
            }
        }

        start = 0;
        region = null;
        return false;
    }
}

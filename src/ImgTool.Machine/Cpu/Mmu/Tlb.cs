using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Cpu;

/// <summary>
/// The software TLB: direct-mapped, one set for supervisor and one for user accesses, each entry a linear page
/// with a read tag, a write tag and the host address of the RAM page it maps (QEMU's addend: host = addend + linear).
/// Only plain RAM is entered (ROM, MMIO and PAM-routed pages take the slow path). A write tag is entered only
/// when the page is writable at that privilege, its dirty bit is set, and it holds no decoded code, so a hit
/// never needs to set A/D bits or invalidate blocks. Flushed on CR3 and CR0/CR4 paging changes, INVLPG, A20
/// and PAM changes. The entries sit in a pinned array, so translated code reaches them at an address fixed for
/// the CPU's life; a read or write hit is one compare: the tag against the page of the access's last byte (an
/// access that straddles pages cannot match, as the next page has another index).
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    internal const int TlbBits = 10;
    internal const int TlbEntries = 1 << TlbBits;
    private const uint InvalidTag = 1;
    private const uint PageOffsetMask = PhysicalMemory.PageSizeBytes - 1;

    // [set * TlbEntries + index]; set 0 = supervisor, 1 = user (CPL 3).
    private readonly TlbEntry[] _tlb = GC.AllocateArray<TlbEntry>(2 * TlbEntries, pinned: true);
    private readonly uint[] _tlbPhysicalPage = new uint[2 * TlbEntries];

    /// <summary>Offset of the current privilege's set (0 or <see cref="TlbEntries"/>).</summary>
    private int _tlbSet;

    internal long TlbMisses { get; private set; }

    internal void FlushTlb()
    {
        foreach (ref TlbEntry entry in _tlb.AsSpan())
        {
            entry.ReadTag = entry.WriteTag = InvalidTag;
        }
    }

    /// <summary>INVLPG: drops the page's entries in both sets.</summary>
    internal void FlushTlbPage(uint linear)
    {
        int index = (int)((linear >> PhysicalMemory.PageShift) & (TlbEntries - 1));
        _tlb[index].ReadTag = _tlb[index].WriteTag = InvalidTag;
        _tlb[TlbEntries + index].ReadTag = _tlb[TlbEntries + index].WriteTag = InvalidTag;
    }

    /// <summary>Withdraws write entries that map a physical page that now holds decoded code.</summary>
    internal void FlushTlbWritesTo(uint physicalPageAddress)
    {
        for (int i = 0; i < _tlb.Length; i++)
        {
            if (_tlb[i].WriteTag != InvalidTag && _tlbPhysicalPage[i] == physicalPageAddress)
            {
                _tlb[i].WriteTag = InvalidTag;
            }
        }
    }

    /// <summary>
    /// The current privilege's set. A change ends the block: translated code has the set's address built in
    /// (checked when a region is entered), so it must not run on past a privilege change.
    /// </summary>
    private void SelectTlbSet()
    {
        _tlbSet = Cpl == 3 ? TlbEntries : 0;
        EndBlock = true;
    }

    /// <summary>Offset of the current privilege's set in the entries (0: supervisor; <see cref="TlbEntries"/>: user).</summary>
    internal int TlbSetOffset => _tlbSet;

    /// <summary>The first entry of the current privilege's set (the array is pinned: the address holds for the CPU's life).</summary>
    internal TlbEntry* TlbSetAddress => (TlbEntry*)Unsafe.AsPointer(ref _tlb[_tlbSet]);

    /// <summary>The current set's entry for a linear address.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int TlbIndex(uint linear) => _tlbSet + (int)((linear >> PhysicalMemory.PageShift) & (TlbEntries - 1));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref TlbEntry TlbEntryFor(uint linear) => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_tlb), TlbIndex(linear));

    /// <summary>The tag an access of sizeBytes at linear hits: the page of its last byte (so a page straddle misses).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint TlbTag(uint linear, int sizeBytes) => (linear + (uint)(sizeBytes - 1)) & ~PageOffsetMask;

    /// <summary>
    /// The physical address of a linear one from the current set's read entry, without a walk; false when it is not
    /// there. Instruction fetch asks first: a readable page is executable on this CPU (no NX), and the entry exists
    /// only after a walk that set the accessed bit.
    /// </summary>
    internal bool TryTranslateFromTlb(uint linear, out uint physical)
    {
        int index = TlbIndex(linear);
        if (_tlb[index].ReadTag == (linear & ~PageOffsetMask))
        {
            physical = _tlbPhysicalPage[index] | (linear & PageOffsetMask);
            return true;
        }

        physical = 0;
        return false;
    }

    /// <summary>Host address of a RAM byte for a read of sizeBytes at a linear address, or null (not in the TLB, or straddling pages).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* ReadHost(uint linear, int sizeBytes)
    {
        ref TlbEntry entry = ref TlbEntryFor(linear);
        return entry.ReadTag == TlbTag(linear, sizeBytes) ? (byte*)(entry.Addend + (nint)linear) : null;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* WriteHost(uint linear, int sizeBytes)
    {
        ref TlbEntry entry = ref TlbEntryFor(linear);
        return entry.WriteTag == TlbTag(linear, sizeBytes) ? (byte*)(entry.Addend + (nint)linear) : null;
    }

    /// <summary>Enters a translation for the current privilege's set (RAM pages only).</summary>
    private void FillTlb(uint linear, uint physical, bool writable, bool supervisorAccess)
    {
        uint physicalPage = physical & ~PageOffsetMask;
        byte* host = Memory.RamPagePointer(physicalPage, forWrite: false);
        if (host is null)
        {
            return;
        }

        int index = (supervisorAccess ? 0 : _tlbSet) + (int)((linear >> PhysicalMemory.PageShift) & (TlbEntries - 1));
        uint linearPage = linear & ~PageOffsetMask;
        ref TlbEntry entry = ref _tlb[index];
        entry.ReadTag = linearPage;
        entry.Addend = (nint)host - (nint)linearPage;
        _tlbPhysicalPage[index] = physicalPage;
        entry.WriteTag = writable && Memory.RamPagePointer(physicalPage, forWrite: true) == host && !_code.HoldsCode(physicalPage)
            ? linearPage
            : InvalidTag;
    }
}

/// <summary>One TLB entry: the linear page a read and a write hit (or an invalid tag), and host = Addend + linear.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct TlbEntry
{
    public const int ReadTagOffset = 0, WriteTagOffset = 4, AddendOffset = 8;

    public uint ReadTag;
    public uint WriteTag;
    public nint Addend;
}

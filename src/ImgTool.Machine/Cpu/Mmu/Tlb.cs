using System.Runtime.CompilerServices;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Cpu;

/// <summary>
/// The software TLB: direct-mapped, one set for supervisor and one for user accesses, each entry a linear page
/// with a read tag, a write tag and the host address of the RAM page it maps (QEMU's addend: host = addend + linear).
/// Only plain RAM is entered (ROM, MMIO and PAM-routed pages take the slow path). A write tag is entered only
/// when the page is writable at that privilege, its dirty bit is set, and it holds no decoded code, so a hit
/// never needs to set A/D bits or invalidate blocks. Flushed on CR3 and CR0/CR4 paging changes, INVLPG, A20
/// and PAM changes.
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    internal const int TlbBits = 10;
    internal const int TlbEntries = 1 << TlbBits;
    private const uint InvalidTag = 1;
    private const uint PageOffsetMask = PhysicalMemory.PageSizeBytes - 1;

    // [set * TlbEntries + index]; set 0 = supervisor, 1 = user (CPL 3).
    private readonly uint[] _tlbReadTag = new uint[2 * TlbEntries];
    private readonly uint[] _tlbWriteTag = new uint[2 * TlbEntries];
    private readonly nint[] _tlbAddend = new nint[2 * TlbEntries];
    private readonly uint[] _tlbPhysicalPage = new uint[2 * TlbEntries];

    /// <summary>Offset of the current privilege's set (0 or <see cref="TlbEntries"/>).</summary>
    private int _tlbSet;

    internal long TlbMisses { get; private set; }

    internal void FlushTlb()
    {
        Array.Fill(_tlbReadTag, InvalidTag);
        Array.Fill(_tlbWriteTag, InvalidTag);
    }

    /// <summary>INVLPG: drops the page's entries in both sets.</summary>
    internal void FlushTlbPage(uint linear)
    {
        int index = (int)((linear >> PhysicalMemory.PageShift) & (TlbEntries - 1));
        _tlbReadTag[index] = _tlbWriteTag[index] = InvalidTag;
        _tlbReadTag[TlbEntries + index] = _tlbWriteTag[TlbEntries + index] = InvalidTag;
    }

    /// <summary>Withdraws write entries that map a physical page that now holds decoded code.</summary>
    internal void FlushTlbWritesTo(uint physicalPageAddress)
    {
        for (int i = 0; i < _tlbWriteTag.Length; i++)
        {
            if (_tlbWriteTag[i] != InvalidTag && _tlbPhysicalPage[i] == physicalPageAddress)
            {
                _tlbWriteTag[i] = InvalidTag;
            }
        }
    }

    private void SelectTlbSet() => _tlbSet = Cpl == 3 ? TlbEntries : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int TlbIndex(uint linear) => _tlbSet + (int)((linear >> PhysicalMemory.PageShift) & (TlbEntries - 1));

    /// <summary>Host address of a RAM byte for a read of sizeBytes at a linear address, or null (not in the TLB, or straddling pages).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* ReadHost(uint linear, int sizeBytes)
    {
        int index = TlbIndex(linear);
        if (_tlbReadTag[index] == (linear & ~PageOffsetMask) && (linear & PageOffsetMask) <= PhysicalMemory.PageSizeBytes - (uint)sizeBytes)
        {
            return (byte*)(_tlbAddend[index] + (nint)linear);
        }

        return null;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* WriteHost(uint linear, int sizeBytes)
    {
        int index = TlbIndex(linear);
        if (_tlbWriteTag[index] == (linear & ~PageOffsetMask) && (linear & PageOffsetMask) <= PhysicalMemory.PageSizeBytes - (uint)sizeBytes)
        {
            return (byte*)(_tlbAddend[index] + (nint)linear);
        }

        return null;
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
        _tlbReadTag[index] = linearPage;
        _tlbAddend[index] = (nint)host - (nint)linearPage;
        _tlbPhysicalPage[index] = physicalPage;
        _tlbWriteTag[index] = writable && Memory.RamPagePointer(physicalPage, forWrite: true) == host && !_code.HoldsCode(physicalPage)
            ? linearPage
            : InvalidTag;
    }
}

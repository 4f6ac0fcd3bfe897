using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Cpu;

/// <summary>
/// Memory operands: segment checks (limit, type, null selector; SDM vol. 3, 5.3-5.5), then the TLB's host
/// pointer, else the page walk and the physical bus (ROM, MMIO, accesses straddling pages). Each segment keeps
/// a "fast limit" per direction: the highest offset a plain access may reach, or -1 when every access must take
/// the checked path (expand-down, unusable, wrong type). A faulting access raises the exception and returns 0;
/// a write either happens whole or faults before writing anything.
/// </summary>
internal sealed unsafe partial class X86Cpu
{
    private readonly uint[] _segmentBase = new uint[6];
    private readonly long[] _fastReadLimit = new long[6];
    private readonly long[] _fastWriteLimit = new long[6];

    /// <summary>
    /// Bit n set when segment n is flat for plain accesses: base 0, reads and writes allowed at every offset. A change
    /// ends the block: translated code that assumed a segment flat (checked when a region is entered) must not run on.
    /// </summary>
    private int _flatSegments;

    /// <summary>The segments (bit per segment register) whose plain accesses need neither a base nor a limit check.</summary>
    internal int FlatSegments => _flatSegments;

    /// <summary>Recomputes the per-segment fast-path data after S[segment] changed (a load, a mode change, a test's poke).</summary>
    internal void RefreshSegment(int segment)
    {
        ref readonly SegmentRegister s = ref S[segment];
        _segmentBase[segment] = s.Base;
        bool checkTypes = ProtectedMode && (_eflags & Flags.VM) == 0;
        long read = s.Limit, write = s.Limit;
        if (s.ExpandDown)
        {
            read = write = -1;
        }
        else if (checkTypes)
        {
            ushort a = s.Attributes;
            bool usable = (a & Descriptor.Present) != 0 && (a & Descriptor.CodeOrData) != 0;
            bool code = (a & Descriptor.Code) != 0;
            bool readable = usable && (!code || (a & Descriptor.WritableOrReadable) != 0);
            bool writable = usable && !code && (a & Descriptor.WritableOrReadable) != 0;
            read = readable ? read : -1;
            write = writable ? write : -1;
        }

        _fastReadLimit[segment] = read;
        _fastWriteLimit[segment] = write;
        int flat = s.Base == 0 && read == uint.MaxValue && write == uint.MaxValue ? _flatSegments | (1 << segment) : _flatSegments & ~(1 << segment);
        if (flat != _flatSegments)
        {
            _flatSegments = flat;
            EndBlock = true;
        }
    }

    internal void RefreshSegments()
    {
        for (int segment = 0; segment < 6; segment++)
        {
            RefreshSegment(segment);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal long FastReadLimit(int segment) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_fastReadLimit), segment);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal long FastWriteLimit(int segment) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_fastWriteLimit), segment);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal uint SegmentBase(int segment) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_segmentBase), segment);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal uint Read8(int segment, uint offset)
    {
        if ((long)offset <= FastReadLimit(segment))
        {
            uint linear = SegmentBase(segment) + offset;
            byte* host = ReadHost(linear, 1);
            if (host != null)
            {
                return *host;
            }

            return ReadLinear(linear, 1);
        }

        return ReadChecked(segment, offset, 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal uint Read16(int segment, uint offset)
    {
        if ((long)offset + 1 <= FastReadLimit(segment))
        {
            uint linear = SegmentBase(segment) + offset;
            byte* host = ReadHost(linear, 2);
            if (host != null)
            {
                return Unsafe.ReadUnaligned<ushort>(host);
            }

            return ReadLinear(linear, 2);
        }

        return ReadChecked(segment, offset, 2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal uint Read32(int segment, uint offset)
    {
        if ((long)offset + 3 <= FastReadLimit(segment))
        {
            uint linear = SegmentBase(segment) + offset;
            byte* host = ReadHost(linear, 4);
            if (host != null)
            {
                return Unsafe.ReadUnaligned<uint>(host);
            }

            return ReadLinear(linear, 4);
        }

        return ReadChecked(segment, offset, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal uint Read(int segment, uint offset, int sizeBytes) => sizeBytes switch
    {
        4 => Read32(segment, offset),
        2 => Read16(segment, offset),
        _ => Read8(segment, offset),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Write8(int segment, uint offset, uint value)
    {
        if ((long)offset <= FastWriteLimit(segment))
        {
            uint linear = SegmentBase(segment) + offset;
            byte* host = WriteHost(linear, 1);
            if (host != null)
            {
                *host = (byte)value;
                return;
            }

            WriteLinear(linear, 1, value);
            return;
        }

        WriteChecked(segment, offset, 1, value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Write16(int segment, uint offset, uint value)
    {
        if ((long)offset + 1 <= FastWriteLimit(segment))
        {
            uint linear = SegmentBase(segment) + offset;
            byte* host = WriteHost(linear, 2);
            if (host != null)
            {
                Unsafe.WriteUnaligned(host, (ushort)value);
                return;
            }

            WriteLinear(linear, 2, value);
            return;
        }

        WriteChecked(segment, offset, 2, value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Write32(int segment, uint offset, uint value)
    {
        if ((long)offset + 3 <= FastWriteLimit(segment))
        {
            uint linear = SegmentBase(segment) + offset;
            byte* host = WriteHost(linear, 4);
            if (host != null)
            {
                Unsafe.WriteUnaligned(host, value);
                return;
            }

            WriteLinear(linear, 4, value);
            return;
        }

        WriteChecked(segment, offset, 4, value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Write(int segment, uint offset, int sizeBytes, uint value)
    {
        switch (sizeBytes)
        {
            case 4: Write32(segment, offset, value); break;
            case 2: Write16(segment, offset, value); break;
            default: Write8(segment, offset, value); break;
        }
    }

    /// <summary>
    /// The checked read translated code calls after its inline TLB hit failed. Not inlined: at every access site it
    /// would only repeat the fast path and lengthen RyuJIT's compile of the region.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal uint ReadMiss(int segment, uint offset, int sizeBytes) => Read(segment, offset, sizeBytes);

    /// <summary>The checked write after a missed inline TLB hit (not inlined, as <see cref="ReadMiss"/>).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal void WriteMiss(int segment, uint offset, int sizeBytes, uint value) => Write(segment, offset, sizeBytes, value);

    /// <summary>
    /// Checks that a write of sizeBytes at segment:offset would succeed (segment and paging), without writing:
    /// instructions that write several places (PUSHA, ENTER, far CALL, interrupt frames) probe first.
    /// </summary>
    internal bool ProbeWrite(int segment, uint offset, int sizeBytes)
    {
        if (!CheckSegment(segment, offset, sizeBytes, write: true))
        {
            return false;
        }

        uint linear = SegmentBase(segment) + offset;
        return WriteHost(linear, sizeBytes) != null || ProbeLinearWrite(linear, sizeBytes, supervisorAccess: false);
    }

    /// <summary>Segment checks of the slow path: type, null selector, limit, expand-down (SDM vol. 3, 5.3).</summary>
    internal bool CheckSegment(int segment, uint offset, int sizeBytes, bool write)
    {
        ref readonly SegmentRegister s = ref S[segment];
        bool protectedTypes = ProtectedMode && (_eflags & Flags.VM) == 0;
        if (protectedTypes)
        {
            ushort a = s.Attributes;
            bool usable = (a & Descriptor.Present) != 0 && (a & Descriptor.CodeOrData) != 0;
            bool code = (a & Descriptor.Code) != 0;
            bool allowed = usable && (write ? !code && (a & Descriptor.WritableOrReadable) != 0 : !code || (a & Descriptor.WritableOrReadable) != 0);
            if (!allowed)
            {
                RaiseFault(segment == SS ? Vector.SS : Vector.GP, 0);
                return false;
            }
        }

        ulong last = (ulong)offset + (uint)(sizeBytes - 1);
        bool inside;
        if (s.ExpandDown)
        {
            // Valid offsets run from limit + 1 to 0xFFFF or 0xFFFFFFFF by the B bit (SDM vol. 3, 3.4.5.1).
            ulong upper = s.Big ? 0xFFFFFFFFul : 0xFFFFul;
            inside = offset > s.Limit && last <= upper;
        }
        else
        {
            inside = last <= s.Limit;
        }

        if (!inside)
        {
            RaiseFault(segment == SS ? Vector.SS : Vector.GP, 0);
            return false;
        }

        return true;
    }

    private uint ReadChecked(int segment, uint offset, int sizeBytes) =>
        CheckSegment(segment, offset, sizeBytes, write: false) ? ReadLinear(SegmentBase(segment) + offset, sizeBytes) : 0;

    private void WriteChecked(int segment, uint offset, int sizeBytes, uint value)
    {
        if (CheckSegment(segment, offset, sizeBytes, write: true))
        {
            WriteLinear(SegmentBase(segment) + offset, sizeBytes, value);
        }
    }

    /// <summary>A read at a linear address at the current privilege: TLB, else page walk and the bus; pages are split.</summary>
    internal uint ReadLinear(uint linear, int sizeBytes, bool supervisorAccess = false)
    {
        if (!supervisorAccess)
        {
            byte* host = ReadHost(linear, sizeBytes);
            if (host != null)
            {
                return sizeBytes == 4 ? Unsafe.ReadUnaligned<uint>(host) : sizeBytes == 2 ? Unsafe.ReadUnaligned<ushort>(host) : *host;
            }
        }

        if ((linear & PageOffsetMask) > PhysicalMemory.PageSizeBytes - (uint)sizeBytes)
        {
            uint value = 0;
            for (int i = 0; i < sizeBytes; i++)
            {
                if (!Translate(linear + (uint)i, AccessKind.Read, supervisorAccess, out uint bytePhysical))
                {
                    return 0;
                }

                value |= (uint)Memory.Read8(bytePhysical) << (8 * i);
            }

            return value;
        }

        return Translate(linear, AccessKind.Read, supervisorAccess, out uint physical) ? Memory.Read(physical, sizeBytes) : 0;
    }

    /// <summary>A write at a linear address; a write straddling pages translates both before writing either.</summary>
    internal void WriteLinear(uint linear, int sizeBytes, uint value, bool supervisorAccess = false)
    {
        if ((linear & PageOffsetMask) > PhysicalMemory.PageSizeBytes - (uint)sizeBytes)
        {
            uint secondPage = (linear + (uint)sizeBytes - 1) & ~PageOffsetMask;
            if (!Translate(linear, AccessKind.Write, supervisorAccess, out uint first) ||
                !Translate(secondPage, AccessKind.Write, supervisorAccess, out uint second))
            {
                return;
            }

            for (int i = 0; i < sizeBytes; i++)
            {
                uint byteLinear = linear + (uint)i;
                uint physical = (byteLinear & ~PageOffsetMask) == secondPage ? second + (byteLinear - secondPage) : first + (uint)i;
                Memory.Write8(physical, (byte)(value >> (8 * i)));
            }

            return;
        }

        if (Translate(linear, AccessKind.Write, supervisorAccess, out uint target))
        {
            Memory.Write(target, sizeBytes, value);
        }
    }

    private bool ProbeLinearWrite(uint linear, int sizeBytes, bool supervisorAccess) =>
        Translate(linear, AccessKind.Write, supervisorAccess, out _) &&
        ((linear & PageOffsetMask) <= PhysicalMemory.PageSizeBytes - (uint)sizeBytes ||
         Translate((linear + (uint)sizeBytes - 1) & ~PageOffsetMask, AccessKind.Write, supervisorAccess, out _));

    /// <summary>Reads bytes at segment:offset (FPU and FXSAVE images, descriptors); false when it faulted.</summary>
    internal bool ReadBytes(int segment, uint offset, Span<byte> destination)
    {
        if (!CheckSegment(segment, offset, destination.Length, write: false))
        {
            return false;
        }

        uint linear = SegmentBase(segment) + offset;
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = (byte)ReadLinear(linear + (uint)i, 1);
            if (FaultPending)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Writes bytes at segment:offset after checking every page they touch; false (nothing written) when it faulted.</summary>
    internal bool WriteBytes(int segment, uint offset, ReadOnlySpan<byte> source)
    {
        if (!CheckSegment(segment, offset, source.Length, write: true))
        {
            return false;
        }

        uint linear = SegmentBase(segment) + offset;
        for (uint page = linear & ~PageOffsetMask; ; page += PhysicalMemory.PageSizeBytes)
        {
            if (!Translate(Math.Max(page, linear), AccessKind.Write, supervisorAccess: false, out _))
            {
                return false;
            }

            if (page >= ((linear + (uint)source.Length - 1) & ~PageOffsetMask))
            {
                break;
            }
        }

        for (int i = 0; i < source.Length; i++)
        {
            WriteLinear(linear + (uint)i, 1, source[i]);
        }

        return true;
    }

    /// <summary>Implicit supervisor-level reads of system structures (GDT, LDT, IDT, TSS), SDM vol. 3, 4.6.</summary>
    internal uint ReadSystem(uint linear, int sizeBytes) => ReadLinear(linear, sizeBytes, supervisorAccess: true);

    internal void WriteSystem(uint linear, int sizeBytes, uint value) => WriteLinear(linear, sizeBytes, value, supervisorAccess: true);
}

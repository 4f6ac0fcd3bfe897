namespace ImgTool.Machine.Cpu;

/// <summary>What a memory access is, for the page walk's permission checks.</summary>
internal enum AccessKind : byte
{
    Read,
    Write,
    Execute,
}

/// <summary>
/// Linear to physical translation with 32-bit two-level paging (SDM vol. 3, 4.3): 4 KiB pages through a page
/// directory and page tables, 4 MiB pages when CR4.PSE is set and the directory entry has PS. Accessed and dirty
/// bits are set as the processor sets them; a refused access raises #PF with CR2 and the error code (4.7).
/// Supervisor writes to read-only pages are allowed unless CR0.WP (4.6).
/// </summary>
internal sealed partial class X86Cpu
{
    /// <summary>
    /// Translates a linear address for an access at the current privilege (or as a supervisor for implicit
    /// accesses: descriptor tables, the TSS, the IDT), filling the TLB. False with #PF pending when refused.
    /// </summary>
    internal bool Translate(uint linear, AccessKind access, bool supervisorAccess, out uint physical)
    {
        TlbMisses++;
        bool user = !supervisorAccess && Cpl == 3;
        if (!PagingEnabled)
        {
            physical = linear & Memory.A20Mask;
            FillTlb(linear, physical, writable: true, supervisorAccess);
            return true;
        }

        uint directoryEntryAddress = (Cr3 & PageBits.FrameMask4K) | ((linear >> 22) << 2);
        uint pde = Memory.Read32(directoryEntryAddress);
        bool write = access == AccessKind.Write;
        if ((pde & PageBits.Present) == 0)
        {
            return PageFault(linear, present: false, write, user, out physical);
        }

        bool writable, userPage;
        if ((pde & PageBits.LargePage) != 0 && (Cr4 & ControlBits.Cr4PSE) != 0)
        {
            writable = (pde & PageBits.Writable) != 0;
            userPage = (pde & PageBits.User) != 0;
            if (!Allowed(writable, userPage, write, user))
            {
                return PageFault(linear, present: true, write, user, out physical);
            }

            uint updated = pde | PageBits.Accessed | (write ? PageBits.Dirty : 0);
            if (updated != pde)
            {
                Memory.Write32(directoryEntryAddress, updated);
            }

            physical = ((pde & PageBits.FrameMask4M) | (linear & ~PageBits.FrameMask4M)) & Memory.A20Mask;
            FillTlb(linear, physical, (updated & PageBits.Dirty) != 0 && WritableAt(writable, userPage, user), supervisorAccess);
            return true;
        }

        uint tableEntryAddress = (pde & PageBits.FrameMask4K) | (((linear >> 12) & 0x3FF) << 2);
        uint pte = Memory.Read32(tableEntryAddress);
        if ((pte & PageBits.Present) == 0)
        {
            return PageFault(linear, present: false, write, user, out physical);
        }

        // The effective rights are the stricter of both levels (SDM vol. 3, 4.6, table 4-10 with CR0.WP).
        writable = (pde & pte & PageBits.Writable) != 0;
        userPage = (pde & pte & PageBits.User) != 0;
        if (!Allowed(writable, userPage, write, user))
        {
            return PageFault(linear, present: true, write, user, out physical);
        }

        if ((pde & PageBits.Accessed) == 0)
        {
            Memory.Write32(directoryEntryAddress, pde | PageBits.Accessed);
        }

        uint newPte = pte | PageBits.Accessed | (write ? PageBits.Dirty : 0);
        if (newPte != pte)
        {
            Memory.Write32(tableEntryAddress, newPte);
        }

        physical = ((pte & PageBits.FrameMask4K) | (linear & PageOffsetMask)) & Memory.A20Mask;
        FillTlb(linear, physical, (newPte & PageBits.Dirty) != 0 && WritableAt(writable, userPage, user), supervisorAccess);
        return true;
    }

    private bool Allowed(bool writable, bool userPage, bool write, bool user)
    {
        if (user && !userPage)
        {
            return false;
        }

        return !write || WritableAt(writable, userPage, user);
    }

    private bool WritableAt(bool writable, bool userPage, bool user) =>
        writable || (!user && (Cr0 & ControlBits.Cr0WP) == 0);

    private bool PageFault(uint linear, bool present, bool write, bool user, out uint physical)
    {
        physical = 0;
        Cr2 = linear;
        uint error = (present ? PageBits.ErrorPresent : 0) | (write ? PageBits.ErrorWrite : 0) | (user ? PageBits.ErrorUser : 0);
        RaiseFault(Vector.PF, error);
        return false;
    }

    /// <summary>Translates without faulting or touching A/D bits (trace and diagnosis output).</summary>
    internal bool Probe(uint linear, out uint physical)
    {
        physical = linear & Memory.A20Mask;
        if (!PagingEnabled)
        {
            return true;
        }

        uint pde = Memory.Read32((Cr3 & PageBits.FrameMask4K) | ((linear >> 22) << 2));
        if ((pde & PageBits.Present) == 0)
        {
            return false;
        }

        if ((pde & PageBits.LargePage) != 0 && (Cr4 & ControlBits.Cr4PSE) != 0)
        {
            physical = (pde & PageBits.FrameMask4M) | (linear & ~PageBits.FrameMask4M);
            return true;
        }

        uint pte = Memory.Read32((pde & PageBits.FrameMask4K) | (((linear >> 12) & 0x3FF) << 2));
        physical = (pte & PageBits.FrameMask4K) | (linear & PageOffsetMask);
        return (pte & PageBits.Present) != 0;
    }
}

namespace ImgTool.Machine.Cpu;

/// <summary>EFLAGS bits (Intel SDM vol. 1, 3.4.3; vol. 3, 2.3).</summary>
internal static class Flags
{
    public const uint CF = 1u << 0, Reserved1 = 1u << 1, PF = 1u << 2, AF = 1u << 4, ZF = 1u << 6, SF = 1u << 7, TF = 1u << 8,
        IF = 1u << 9, DF = 1u << 10, OF = 1u << 11, IOPL = 3u << 12, NT = 1u << 14, RF = 1u << 16,
        VM = 1u << 17, AC = 1u << 18, VIF = 1u << 19, VIP = 1u << 20, ID = 1u << 21;

    public const int IoplShift = 12;

    /// <summary>The six status flags the ALU computes (kept lazily, <see cref="X86Cpu"/>).</summary>
    public const uint Arithmetic = CF | PF | AF | ZF | SF | OF;
}

/// <summary>Control register bits (SDM vol. 3, 2.5).</summary>
internal static class ControlBits
{
    public const uint Cr0PE = 1u << 0, Cr0MP = 1u << 1, Cr0EM = 1u << 2, Cr0TS = 1u << 3, Cr0ET = 1u << 4, Cr0NE = 1u << 5,
        Cr0WP = 1u << 16, Cr0AM = 1u << 18, Cr0NW = 1u << 29, Cr0CD = 1u << 30, Cr0PG = 1u << 31;

    /// <summary>CR0 at power-on (SDM vol. 3, 9.1.1, table 9-1): CD, NW and ET set.</summary>
    public const uint Cr0Reset = Cr0CD | Cr0NW | Cr0ET;

    public const uint Cr4VME = 1u << 0, Cr4PVI = 1u << 1, Cr4TSD = 1u << 2, Cr4DE = 1u << 3, Cr4PSE = 1u << 4,
        Cr4PAE = 1u << 5, Cr4MCE = 1u << 6, Cr4PGE = 1u << 7, Cr4PCE = 1u << 8, Cr4OSFXSR = 1u << 9, Cr4OSXMMEXCPT = 1u << 10;

    /// <summary>The CR4 bits this CPU accepts: what CPUID advertises (VME and PVI are not: no virtual-8086 extensions).</summary>
    public const uint Cr4Supported = Cr4TSD | Cr4DE | Cr4PSE | Cr4MCE | Cr4PCE | Cr4OSFXSR;
}

/// <summary>Segment descriptor fields (SDM vol. 3, 3.4.5), as kept in <see cref="SegmentRegister.Attributes"/>.</summary>
internal static class Descriptor
{
    // Byte 5: type (bits 0-3), S (4), DPL (5-6), P (7).
    public const ushort Accessed = 1 << 0, WritableOrReadable = 1 << 1, ExpandDownOrConforming = 1 << 2, Code = 1 << 3,
        CodeOrData = 1 << 4, Present = 1 << 7;

    public const int DplShift = 5;

    // Byte 6, kept in bits 12-15: AVL (12), L (13), D/B (14), G (15).
    public const ushort Big = 1 << 14, Granularity = 1 << 15;

    // System descriptor types (S = 0), SDM vol. 3, table 3-2.
    public const int Tss16Available = 1, Ldt = 2, Tss16Busy = 3, CallGate16 = 4, TaskGate = 5, InterruptGate16 = 6, TrapGate16 = 7,
        Tss32Available = 9, Tss32Busy = 11, CallGate32 = 12, InterruptGate32 = 14, TrapGate32 = 15;

    public const int TypeMask = 0x0F;
    public const ushort BusyTss = 1 << 1;

    public static int Dpl(ushort attributes) => (attributes >> DplShift) & 3;
}

/// <summary>Selector fields (SDM vol. 3, 3.4.2).</summary>
internal static class Selector
{
    public const int RplMask = 3;
    public const uint TableIndicator = 1 << 2;
    public const uint IndexMask = 0xFFF8;
    public const uint NullMask = 0xFFFC;
}

/// <summary>Two-level 32-bit paging entries (SDM vol. 3, 4.3, tables 4-4 to 4-6).</summary>
internal static class PageBits
{
    public const uint Present = 1u << 0, Writable = 1u << 1, User = 1u << 2, WriteThrough = 1u << 3, CacheDisable = 1u << 4,
        Accessed = 1u << 5, Dirty = 1u << 6, LargePage = 1u << 7, Global = 1u << 8;

    public const uint FrameMask4K = 0xFFFFF000;
    public const uint FrameMask4M = 0xFFC00000;

    // #PF error code bits (SDM vol. 3, 4.7).
    public const uint ErrorPresent = 1u << 0, ErrorWrite = 1u << 1, ErrorUser = 1u << 2, ErrorReserved = 1u << 3;
}

/// <summary>Model-specific registers a Linux kernel reads or writes on a P6 (SDM vol. 4).</summary>
internal static class Msr
{
    public const uint Tsc = 0x10, PlatformId = 0x17, ApicBase = 0x1B, BiosSignId = 0x8B, MtrrCap = 0xFE,
        SysenterCs = 0x174, SysenterEsp = 0x175, SysenterEip = 0x176, MiscEnable = 0x1A0;
}

namespace ImgTool.Machine.Cpu;

/// <summary>Port I/O as the CPU sees it (IN, OUT, INS, OUTS).</summary>
internal interface IIoBus
{
    uint In(ushort port, int sizeBytes);

    void Out(ushort port, int sizeBytes, uint value);
}

/// <summary>The interrupt controller seen from the CPU's INTR pin (the 8259 pair on a PC).</summary>
internal interface IInterruptLine
{
    /// <summary>True when an unmasked interrupt request is waiting.</summary>
    bool Pending { get; }

    /// <summary>The INTA cycle: returns the vector and marks the request in service.</summary>
    int Acknowledge();
}

/// <summary>Why <see cref="X86Cpu.Run"/> returned.</summary>
internal enum CpuExit
{
    /// <summary>The instruction budget given to Run was used up.</summary>
    Budget,

    /// <summary>HLT executed; the machine resumes it when an interrupt is due.</summary>
    Halted,

    /// <summary>A fault while delivering a double fault: a real PC resets here.</summary>
    TripleFault,

    /// <summary>An instruction or CPU feature this CPU does not implement (named in Diagnosis).</summary>
    Unimplemented,

    /// <summary>A device asked the CPU to stop (reset request, guest-visible end of test).</summary>
    Stopped,

    /// <summary>The same exception at the same instruction over and over (<see cref="ExceptionLoop"/>): the guest makes no progress.</summary>
    ExceptionLoop,
}

/// <summary>
/// A segment register with its hidden descriptor cache (Intel SDM vol. 3, 3.4.3): base, limit and
/// attributes stay as loaded until the next load, which is what makes big-real ("unreal") mode work.
/// </summary>
internal struct SegmentRegister
{
    public ushort Selector;
    public uint Base;
    public uint Limit;

    /// <summary>Descriptor byte 5 (type, S, DPL, P) in bits 0-7 and byte 6's AVL, L, D/B, G in bits 12-15.</summary>
    public ushort Attributes;

    public readonly bool Big => (Attributes & AttrBig) != 0;

    public readonly int Dpl => (Attributes >> Descriptor.DplShift) & 3;

    /// <summary>A data segment whose valid offsets lie above the limit (SDM vol. 3, 3.4.5.1).</summary>
    public readonly bool ExpandDown => (Attributes & (Descriptor.CodeOrData | Descriptor.Code | Descriptor.ExpandDownOrConforming)) ==
        (Descriptor.CodeOrData | Descriptor.ExpandDownOrConforming);

    public const ushort AttrBig = Descriptor.Big;
    public const ushort AttrPresent = Descriptor.Present;

    /// <summary>Code or data, present, writable/readable, accessed: what a real-mode load yields.</summary>
    public const ushort RealModeAttributes = 0x93;
}

namespace ImgTool.Machine.Cpu.X87;

/// <summary>What the FPU needs from the CPU for one instruction.</summary>
internal interface IFpuHost
{
    /// <summary>
    /// Reads at the instruction's effective address + <paramref name="offsetBytes"/>. False: the access faulted;
    /// the CPU has recorded the fault, and the FPU returns <see cref="X87Outcome.MemoryFault"/> with no state changed.
    /// </summary>
    bool ReadOperand(int offsetBytes, Span<byte> destination);

    /// <summary>Writes likewise; the CPU guarantees a write either happens whole or faults without writing anything.</summary>
    bool WriteOperand(int offsetBytes, ReadOnlySpan<byte> source);

    /// <summary>AX, for FSTSW AX / FNSTSW AX.</summary>
    ushort Ax { get; set; }

    /// <summary>EFLAGS: FCOMI/FUCOMI(P) set ZF PF CF and clear OF SF AF; FCMOVcc reads them.</summary>
    uint Eflags { get; set; }
}

/// <summary>How one x87 instruction ended.</summary>
internal enum X87Outcome
{
    /// <summary>Done (masked exceptions, if any, are only recorded in the status word).</summary>
    Completed,

    /// <summary>#MF: an unmasked exception was pending at a waiting instruction; raise vector 16 (or IRQ13 when CR0.NE=0).</summary>
    MathFault,

    /// <summary>A memory operand access faulted; the CPU has the fault, no FPU state changed.</summary>
    MemoryFault,

    /// <summary>Not an x87 instruction this FPU implements.</summary>
    InvalidOpcode,

    /// <summary>#GP(0): FXRSTOR with reserved MXCSR bits set (SDM vol. 2, FXRSTOR).</summary>
    GeneralProtection,
}

/// <summary>Per-instruction context, for FIP/FCS/FDP/FDS/FOP and the environment layouts (SDM vol. 1, 8.1.8, 8.1.10).</summary>
internal readonly record struct X87Context(bool ProtectedMode, bool OperandSize32, ushort CodeSelector,
    uint InstructionOffset, ushort DataSelector, uint DataOffset);

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// What a region's translation takes as fixed from the CPU state when it was built (on the CPU's thread), each
/// checked when the region is entered (a mismatch lets the interpreter run the block): the stack size PUSH/POP
/// assume, the TLB set of the privilege level (its address is built into the memory accesses) and the segments
/// whose accesses skip the base and the limit check. Handlers that change one of them end the block.
/// </summary>
/// <param name="Stack32">SS.B: 32-bit stack pointer.</param>
/// <param name="TlbSet">The privilege's set (its index offset), as X86Cpu.TlbSetOffset reads it.</param>
/// <param name="TlbSetAddress">The set's first entry (the TLB array is pinned).</param>
/// <param name="FlatSegments">The segments flat then (X86Cpu.FlatSegments).</param>
internal readonly record struct TranslationContext(bool Stack32, int TlbSet, nint TlbSetAddress, int FlatSegments)
{
    public static unsafe TranslationContext Of(X86Cpu cpu) => new(cpu.Stack32, cpu.TlbSetOffset, (nint)cpu.TlbSetAddress, cpu.FlatSegments);
}

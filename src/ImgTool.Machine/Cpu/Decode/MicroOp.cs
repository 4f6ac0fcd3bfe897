using System.Runtime.InteropServices;

namespace ImgTool.Machine.Cpu.Decode;

/// <summary>
/// One instruction in the engine's pre-decoded form: its handler and every operand resolved at decode time
/// (register numbers, addressing components, immediates, sizes), so executing it reads only this struct.
/// A memory operand is base + (index &lt;&lt; scale) + displacement in segment <see cref="Segment"/>; a missing base
/// or index names the always-zero register slot, so the address needs no branches. 8-bit registers use the
/// encoding numbers (0-3 AL CL DL BL, 4-7 AH CH DH BH).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MicroOp
{
    public delegate* managed<X86Cpu, ref MicroOp, void> Handler;

    /// <summary>Immediate operand, relative branch displacement, port number or far offset.</summary>
    public uint Immediate;

    /// <summary>Memory displacement.</summary>
    public uint Displacement;

    /// <summary>Second immediate: far selector, ENTER nesting level, RET's stack adjustment.</summary>
    public ushort Immediate2;

    public byte Length;

    /// <summary>Operand size in bytes (1, 2, 4; 8 for CMPXCHG8B).</summary>
    public byte Size;

    public byte Destination;
    public byte Source;
    public byte Base;
    public byte Index;
    public byte Scale;
    public byte Segment;

    /// <summary>32-bit addressing (else 16-bit: the effective address wraps at 64 KiB).</summary>
    public bool Address32;

    /// <summary>Operation within a handler family: ALU op, condition code, shift kind, string kind.</summary>
    public byte Kind;

    /// <summary>REP/REPE (1) or REPNE (2) prefix on string instructions.</summary>
    public byte Repeat;

    /// <summary>A second size (the source of MOVZX/MOVSX, the count kind of shifts).</summary>
    public byte Size2;

    /// <summary>Index into a block-independent side table (x87 instructions).</summary>
    public int Table;
}

/// <summary>Decoded instructions from one physical page, run from its first op to a control transfer or the page's end.</summary>
internal sealed class CodeBlock(MicroOp[] ops, int count, uint physical, bool code32, int lengthBytes)
{
    public readonly MicroOp[] Ops = ops;
    public readonly int Count = count;
    public readonly uint Physical = physical;
    public readonly bool Code32 = code32;

    /// <summary>Bytes from the block's first instruction to the end of its last.</summary>
    public readonly int LengthBytes = lengthBytes;

    public bool Valid = true;

    /// <summary>Executions so far, until the block is hot enough to translate (then no longer counted).</summary>
    public int Heat;

    /// <summary>The translation of the block and the blocks it jumps to on its page, once it is hot; dropped with the page's blocks when its code is written.</summary>
    public Jit.TranslatedCode? Translated;

    /// <summary>The next block on the same physical page (the page's list, for invalidation).</summary>
    public CodeBlock? NextOnPage;
}

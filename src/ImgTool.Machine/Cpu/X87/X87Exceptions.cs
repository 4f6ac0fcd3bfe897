namespace ImgTool.Machine.Cpu.X87;

/// <summary>The status-word exception flags, at their bit positions (SDM vol. 1, 8.1.3, figure 8-4).</summary>
[Flags]
internal enum X87Exceptions : ushort
{
    None = 0,
    Invalid = 1 << 0,
    Denormal = 1 << 1,
    ZeroDivide = 1 << 2,
    Overflow = 1 << 3,
    Underflow = 1 << 4,
    Precision = 1 << 5,
    /// <summary>SF: the invalid operation was a stack overflow or underflow (C1 tells which).</summary>
    StackFault = 1 << 6,
    /// <summary>The six maskable flags (the same bit positions as the control-word masks).</summary>
    All = Invalid | Denormal | ZeroDivide | Overflow | Underflow | Precision,
}

/// <summary>RC, control word bits 10-11 (SDM vol. 1, 4.8.4, table 4-8).</summary>
internal enum RoundingControl
{
    Nearest = 0,
    Down = 1,
    Up = 2,
    TowardZero = 3,
}

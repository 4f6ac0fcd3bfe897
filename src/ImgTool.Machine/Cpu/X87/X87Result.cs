namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// The outcome of one x87 computation: the value to deliver, the exceptions raised, C1 (rounded up), and whether
/// the destination is written (not when an unmasked IE, DE or ZE stops the instruction, SDM vol. 1, 4.9.2 and 8.5).
/// </summary>
internal readonly record struct X87Result(Float80 Value, X87Exceptions Exceptions, bool RoundedUp, bool Store)
{
    public static X87Result Stopped(X87Exceptions exceptions) => new(default, exceptions, false, false);
}

/// <summary>The control word fields (SDM vol. 1, 8.1.5, figure 8-6).</summary>
internal readonly record struct X87Control(ushort Word)
{
    public const ushort InitialWord = 0x037F;
    private const int PrecisionShift = 8;
    private const int RoundingShift = 10;
    private const int FieldMask = 3;
    private const int PrecisionSingle = 0;
    private const int PrecisionDouble = 2;

    public RoundingControl Rounding => (RoundingControl)((Word >> RoundingShift) & FieldMask);

    /// <summary>PC: 00 single (24 bits), 10 double (53), 11 extended (64); 01 is reserved and acts as extended here.</summary>
    public int PrecisionBits => ((Word >> PrecisionShift) & FieldMask) switch
    {
        PrecisionSingle => 24,
        PrecisionDouble => 53,
        _ => 64,
    };

    public FloatFormat ArithmeticFormat => FloatFormat.ExtendedWithPrecision(PrecisionBits);

    public bool IsMasked(X87Exceptions exception) => ((X87Exceptions)Word & exception) == exception;

    /// <summary>True when any of the flags is unmasked (the stack fault counts as IE).</summary>
    public bool AnyUnmasked(X87Exceptions flags) => (flags & X87Exceptions.All & ~(X87Exceptions)Word) != 0;
}

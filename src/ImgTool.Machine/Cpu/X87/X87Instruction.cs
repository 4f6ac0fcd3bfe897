namespace ImgTool.Machine.Cpu.X87;

/// <summary>What an x87 instruction does, independent of its operand form.</summary>
internal enum X87Operation : byte
{
    Wait,
    Nop,
    Load,
    LoadInteger,
    LoadBcd,
    LoadConstant,
    Store,
    StoreInteger,
    StoreBcd,
    Add,
    Multiply,
    Subtract,
    SubtractReverse,
    Divide,
    DivideReverse,
    Compare,
    UnorderedCompare,
    CompareEflags,
    UnorderedCompareEflags,
    Test,
    Examine,
    ConditionalMove,
    Exchange,
    ChangeSign,
    Absolute,
    SquareRoot,
    PartialRemainder,
    IeeeRemainder,
    RoundToInteger,
    Scale,
    Extract,
    TwoToXMinusOne,
    YLog2X,
    YLog2XPlusOne,
    PartialTangent,
    PartialArcTangent,
    Sine,
    Cosine,
    SineCosine,
    DecrementTop,
    IncrementTop,
    Free,
    Init,
    ClearExceptions,
    LoadControlWord,
    StoreControlWord,
    StoreStatusWord,
    StoreStatusWordAx,
    StoreEnvironment,
    LoadEnvironment,
    Save,
    Restore,
    FxSave,
    FxRestore,
}

/// <summary>Where the operands are: ST(0) op ST(i) -> ST(0), ST(i) op ST(0) -> ST(i), or ST(0) op memory -> ST(0).</summary>
internal enum X87Operands : byte
{
    None,
    St0Sti,
    StiSt0,
    Memory,
}

/// <summary>The memory operand's format (SDM vol. 1, figure 4-3 and 4.2.1).</summary>
internal enum X87MemoryFormat : byte
{
    None,
    Int16,
    Int32,
    Int64,
    Single,
    Double,
    Extended,
    Bcd,
    Word,
    Environment,
    State,
    FxState,
}

/// <summary>FLD constant selectors (SDM vol. 2, FLD1/FLDL2T/FLDL2E/FLDPI/FLDLG2/FLDLN2/FLDZ).</summary>
internal enum X87Constant : byte
{
    One,
    Log2Ten,
    Log2E,
    Pi,
    Log10Two,
    LnTwo,
    Zero,
}

/// <summary>FCMOVcc conditions, on EFLAGS as set by FCOMI (SDM vol. 2, FCMOVcc).</summary>
internal enum X87Condition : byte
{
    Below,
    Equal,
    BelowOrEqual,
    Unordered,
    NotBelow,
    NotEqual,
    NotBelowOrEqual,
    NotUnordered,
}

/// <summary>An x87 instruction lowered once at decode time from Iced (the engine stores it; Iced is not touched at run time).</summary>
internal readonly struct X87Instruction
{
    public X87Instruction(X87Operation operation, X87Operands operands, X87MemoryFormat format, byte stackIndex,
        byte pops, bool noWait, byte selector, ushort opcode)
    {
        Operation = operation;
        Operands = operands;
        Format = format;
        StackIndex = stackIndex;
        Pops = pops;
        NoWait = noWait;
        Selector = selector;
        Opcode = opcode;
    }

    public X87Operation Operation { get; }

    public X87Operands Operands { get; }

    public X87MemoryFormat Format { get; }

    /// <summary>i of ST(i).</summary>
    public byte StackIndex { get; }

    /// <summary>How many registers the instruction pops (FxxxP 1, FCOMPP/FUCOMPP 2).</summary>
    public byte Pops { get; }

    /// <summary>The FNxxx forms (and FNSTSW AX) do not check for pending unmasked exceptions first (SDM vol. 1, 8.3.11).</summary>
    public bool NoWait { get; }

    /// <summary>The constant (<see cref="X87Constant"/>) or condition (<see cref="X87Condition"/>) where used.</summary>
    public byte Selector { get; }

    /// <summary>FOP: the low 3 bits of the first opcode byte and the ModR/M byte, 11 bits (SDM vol. 1, 8.1.8).</summary>
    public ushort Opcode { get; }

    public bool HasMemoryOperand => Operands == X87Operands.Memory;

    /// <summary>Control instructions leave FIP/FDP/FOP alone (SDM vol. 1, 8.1.8).</summary>
    public bool IsControl => Operation is X87Operation.Wait or X87Operation.Init or X87Operation.ClearExceptions
        or X87Operation.LoadControlWord or X87Operation.StoreControlWord or X87Operation.StoreStatusWord
        or X87Operation.StoreStatusWordAx or X87Operation.StoreEnvironment or X87Operation.LoadEnvironment
        or X87Operation.Save or X87Operation.Restore or X87Operation.FxSave or X87Operation.FxRestore;

    public static bool TryLower(in Iced.Intel.Instruction instruction, out X87Instruction lowered) =>
        X87Lowering.TryLower(instruction, out lowered);
}

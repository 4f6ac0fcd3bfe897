namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// The x87 FPU: eight 80-bit registers used as a stack, the control, status and tag words, and the last
/// instruction/data pointers (SDM vol. 1, chapter 8). The CPU checks CR0.EM/TS/MP first and calls <see cref="Execute"/>.
/// </summary>
internal sealed partial class X87Fpu
{
    public const int RegisterCount = 8;
    private const int StackMask = RegisterCount - 1;
    private const int TopShift = 11;
    private const ushort TopMask = StackMask << TopShift;
    private const ushort ConditionC0 = 1 << 8;
    private const ushort ConditionC1 = 1 << 9;
    private const ushort ConditionC2 = 1 << 10;
    private const ushort ConditionC3 = 1 << 14;
    private const ushort ConditionMask = ConditionC0 | ConditionC1 | ConditionC2 | ConditionC3;
    private const ushort ErrorSummary = 1 << 7;
    private const ushort Busy = 1 << 15;

    /// <summary>Tag values (SDM vol. 1, 8.1.7, figure 8-7).</summary>
    public const int TagValid = 0;
    public const int TagZero = 1;
    public const int TagSpecial = 2;
    public const int TagEmpty = 3;
    private const int TagBits = 2;

    private readonly Float80[] registers = new Float80[RegisterCount];
    private int emptyMask;
    private int top;
    private ushort control;
    /// <summary>The status word without TOP (which lives in <see cref="top"/>).</summary>
    private ushort status;

    public X87Fpu() => Reset();

    public ushort ControlWord => control;

    public ushort StatusWord => (ushort)((status & ~TopMask) | (top << TopShift));

    /// <summary>The full tag word, each tag computed from the register's contents (as FSTENV/FSAVE store it).</summary>
    public ushort TagWord
    {
        get
        {
            int word = 0;
            for (int physical = 0; physical < RegisterCount; physical++)
            {
                word |= TagOf(physical) << (physical * TagBits);
            }

            return (ushort)word;
        }
    }

    /// <summary>SW.ES: an unmasked exception is pending (FERR#; the machine raises IRQ13 when CR0.NE=0).</summary>
    public bool ErrorPending => (status & ErrorSummary) != 0;

    /// <summary>The last non-control instruction's CS:EIP, opcode and memory operand (SDM vol. 1, 8.1.8).</summary>
    public uint InstructionPointer { get; private set; }

    public ushort InstructionSelector { get; private set; }

    public ushort LastOpcode { get; private set; }

    public uint DataPointer { get; private set; }

    public ushort DataSelector { get; private set; }

    /// <summary>MXCSR as FXSAVE/FXRSTOR see it; the SSE unit (if any) owns its meaning.</summary>
    public uint Mxcsr { get; set; } = DefaultMxcsr;

    public const uint DefaultMxcsr = 0x1F80;

    /// <summary>FNINIT (and power-on) state: CW 0x037F, SW 0, all tags empty, pointers 0 (SDM vol. 1, table 8-1).</summary>
    public void Reset()
    {
        control = X87Control.InitialWord;
        status = 0;
        top = 0;
        emptyMask = (1 << RegisterCount) - 1;
        InstructionPointer = 0;
        InstructionSelector = 0;
        LastOpcode = 0;
        DataPointer = 0;
        DataSelector = 0;
    }

    /// <summary>
    /// The state after RESET (SDM vol. 3, table 9-1): CW 0x0040, SW 0, every register +0.0 and tagged zero (tag word
    /// 0x5555), pointers 0. Firmware then runs FNINIT, which gives the <see cref="Reset"/> state.
    /// </summary>
    public void PowerOn()
    {
        Reset();
        control = PowerOnControlWord;
        emptyMask = 0;
        Array.Clear(registers);
    }

    public const ushort PowerOnControlWord = 0x0040;

    /// <summary>ST(i) for tests and traces (the contents even when empty).</summary>
    public Float80 ReadStack(int index) => registers[Physical(index)];

    public bool IsEmpty(int index) => IsPhysicalEmpty(Physical(index));

    public int Top => top;

    /// <param name="ignorePendingError">IGNNE#: a waiting instruction goes on despite a pending unmasked exception (the PC's FERR# wiring with CR0.NE clear).</param>
    public X87Outcome Execute(in X87Instruction instruction, IFpuHost host, in X87Context context, bool ignorePendingError = false)
    {
        if (!instruction.NoWait && ErrorPending && !ignorePendingError)
        {
            // A waiting instruction first reports the pending unmasked exception (SDM vol. 1, 8.6).
            return X87Outcome.MathFault;
        }

        X87Outcome outcome = Dispatch(instruction, host, context);
        if (outcome == X87Outcome.Completed && !instruction.IsControl)
        {
            InstructionPointer = context.InstructionOffset;
            InstructionSelector = context.CodeSelector;
            LastOpcode = instruction.Opcode;
            if (instruction.HasMemoryOperand)
            {
                DataPointer = context.DataOffset;
                DataSelector = context.DataSelector;
            }
        }

        return outcome;
    }

    private X87Outcome Dispatch(in X87Instruction instruction, IFpuHost host, in X87Context context) => instruction.Operation switch
    {
        X87Operation.Wait or X87Operation.Nop => X87Outcome.Completed,
        X87Operation.Load => Load(instruction, host),
        X87Operation.LoadInteger => LoadInteger(instruction, host),
        X87Operation.LoadBcd => LoadBcd(host),
        X87Operation.LoadConstant => LoadConstant((X87Constant)instruction.Selector),
        X87Operation.Store => Store(instruction, host),
        X87Operation.StoreInteger => StoreInteger(instruction, host),
        X87Operation.StoreBcd => StoreBcd(host),
        X87Operation.Add or X87Operation.Multiply or X87Operation.Subtract or X87Operation.SubtractReverse
            or X87Operation.Divide or X87Operation.DivideReverse => Arithmetic(instruction, host),
        X87Operation.Compare or X87Operation.UnorderedCompare or X87Operation.CompareEflags
            or X87Operation.UnorderedCompareEflags or X87Operation.Test => Compare(instruction, host),
        X87Operation.Examine => Examine(),
        X87Operation.ConditionalMove => ConditionalMove(instruction, host),
        X87Operation.Exchange => Exchange(instruction.StackIndex),
        X87Operation.ChangeSign or X87Operation.Absolute or X87Operation.SquareRoot or X87Operation.RoundToInteger
            => Unary(instruction.Operation),
        X87Operation.PartialRemainder or X87Operation.IeeeRemainder => Remainder(instruction.Operation == X87Operation.IeeeRemainder),
        X87Operation.Scale => Scale(),
        X87Operation.Extract => Extract(),
        X87Operation.TwoToXMinusOne or X87Operation.Sine or X87Operation.Cosine => TranscendentalUnary(instruction.Operation),
        X87Operation.SineCosine or X87Operation.PartialTangent => TranscendentalPush(instruction.Operation),
        X87Operation.YLog2X or X87Operation.YLog2XPlusOne or X87Operation.PartialArcTangent => TranscendentalBinary(instruction.Operation),
        X87Operation.DecrementTop => MoveTop(-1),
        X87Operation.IncrementTop => MoveTop(1),
        X87Operation.Free => Free(instruction),
        X87Operation.Init => Init(),
        X87Operation.ClearExceptions => ClearExceptions(),
        X87Operation.LoadControlWord => LoadControlWord(host),
        X87Operation.StoreControlWord => WriteWord(host, control),
        X87Operation.StoreStatusWord => WriteWord(host, StatusWord),
        X87Operation.StoreStatusWordAx => StoreStatusWordAx(host),
        X87Operation.StoreEnvironment => StoreEnvironment(host, context),
        X87Operation.LoadEnvironment => LoadEnvironment(host, context),
        X87Operation.Save => Save(host, context),
        X87Operation.Restore => Restore(host, context),
        X87Operation.FxSave => FxSave(host),
        X87Operation.FxRestore => FxRestore(host),
        _ => X87Outcome.InvalidOpcode,
    };

    private X87Control Control => new(control);

    private int Physical(int index) => (top + index) & StackMask;

    private bool IsPhysicalEmpty(int physical) => (emptyMask & (1 << physical)) != 0;

    private int TagOf(int physical)
    {
        if (IsPhysicalEmpty(physical))
        {
            return TagEmpty;
        }

        return registers[physical].Class switch
        {
            Float80Class.Zero => TagZero,
            Float80Class.Normal => TagValid,
            _ => TagSpecial,
        };
    }

    private Float80 St(int index) => registers[Physical(index)];

    private bool Empty(int index) => IsPhysicalEmpty(Physical(index));

    private void SetSt(int index, Float80 value)
    {
        int physical = Physical(index);
        registers[physical] = value;
        emptyMask &= ~(1 << physical);
    }

    private void Pop()
    {
        emptyMask |= 1 << top;
        top = (top + 1) & StackMask;
    }

    private void Push(Float80 value)
    {
        top = (top - 1) & StackMask;
        SetSt(0, value);
    }

    /// <summary>Sets C0-C3 from a 4-bit value: bit 0 C0, bit 1 C1, bit 2 C2, bit 3 C3.</summary>
    private void SetConditions(bool c0, bool c1, bool c2, bool c3)
    {
        status = (ushort)((status & ~ConditionMask) | (c0 ? ConditionC0 : 0) | (c1 ? ConditionC1 : 0)
            | (c2 ? ConditionC2 : 0) | (c3 ? ConditionC3 : 0));
    }

    private void SetC1(bool value) => status = (ushort)(value ? status | ConditionC1 : status & ~ConditionC1);

    private void SetC2(bool value) => status = (ushort)(value ? status | ConditionC2 : status & ~ConditionC2);

    /// <summary>Records exception flags; an unmasked one sets ES and B (SDM vol. 1, 8.1.3.1).</summary>
    private void Raise(X87Exceptions flags)
    {
        status |= (ushort)flags;
        UpdateErrorSummary();
    }

    private void UpdateErrorSummary()
    {
        bool pending = Control.AnyUnmasked((X87Exceptions)status);
        status = (ushort)(pending ? status | ErrorSummary | Busy : status & ~(ErrorSummary | Busy));
    }

    /// <summary>
    /// A stack underflow (reading an empty register): IE with SF and C1=0. True when masked, so the caller
    /// delivers the indefinite (SDM vol. 1, 8.5.1.1).
    /// </summary>
    private bool StackUnderflow()
    {
        SetC1(false);
        Raise(X87Exceptions.Invalid | X87Exceptions.StackFault);
        return Control.IsMasked(X87Exceptions.Invalid);
    }

    /// <summary>A push onto a full register: IE with SF and C1=1; masked, the indefinite is pushed.</summary>
    private bool TryPushCheck()
    {
        // The register a push fills is ST(7) before the push.
        if (Empty(StackMask))
        {
            return true;
        }

        SetC1(true);
        Raise(X87Exceptions.Invalid | X87Exceptions.StackFault);
        if (Control.IsMasked(X87Exceptions.Invalid))
        {
            Push(Float80.Indefinite);
        }

        return false;
    }

    /// <summary>Applies a computed result to ST(index): flags, C1 (rounded up), the write and the pops.</summary>
    private void Commit(in X87Result result, int index, int pops)
    {
        SetC1(result.RoundedUp);
        Raise(result.Exceptions);
        if (!result.Store)
        {
            return;
        }

        SetSt(index, result.Value);
        for (int count = 0; count < pops; count++)
        {
            Pop();
        }
    }

    private X87Outcome MoveTop(int delta)
    {
        SetC1(false);
        top = (top + delta) & StackMask;
        return X87Outcome.Completed;
    }

    private X87Outcome Free(in X87Instruction instruction)
    {
        emptyMask |= 1 << Physical(instruction.StackIndex);
        if (instruction.Pops != 0)
        {
            Pop();
        }

        return X87Outcome.Completed;
    }

    private X87Outcome Exchange(int index)
    {
        bool emptyA = Empty(0);
        bool emptyB = Empty(index);
        if (emptyA || emptyB)
        {
            if (!StackUnderflow())
            {
                return X87Outcome.Completed;
            }
        }
        else
        {
            SetC1(false);
        }

        Float80 a = emptyA ? Float80.Indefinite : St(0);
        Float80 b = emptyB ? Float80.Indefinite : St(index);
        SetSt(0, b);
        SetSt(index, a);
        return X87Outcome.Completed;
    }
}

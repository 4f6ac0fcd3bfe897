namespace ImgTool.Machine.Cpu.X87;

/// <summary>FCOM/FUCOM/FICOM/FTST (C3 C2 C0), FCOMI/FUCOMI (ZF PF CF), FXAM and FCMOVcc (SDM vol. 2).</summary>
internal sealed partial class X87Fpu
{
    private const uint CarryFlag = 1 << 0;
    private const uint ParityFlag = 1 << 2;
    private const uint AuxiliaryFlag = 1 << 4;
    private const uint ZeroFlag = 1 << 6;
    private const uint SignFlag = 1 << 7;
    private const uint OverflowFlag = 1 << 11;

    private enum Ordering
    {
        Greater,
        Less,
        Equal,
        Unordered,
    }

    private X87Outcome Compare(in X87Instruction instruction, IFpuHost host)
    {
        Float80 right;
        bool narrowDenormal = false;
        bool rightEmpty = false;
        if (instruction.Operation == X87Operation.Test)
        {
            right = Float80.PositiveZero;
        }
        else if (instruction.Operands == X87Operands.Memory)
        {
            if (!TryReadOperand(instruction.Format, host, out right, out narrowDenormal))
            {
                return X87Outcome.MemoryFault;
            }
        }
        else
        {
            int index = instruction.Pops == 2 ? 1 : instruction.StackIndex;
            rightEmpty = Empty(index);
            right = St(index);
        }

        bool toEflags = instruction.Operation is X87Operation.CompareEflags or X87Operation.UnorderedCompareEflags;
        bool unordered = instruction.Operation is X87Operation.UnorderedCompare or X87Operation.UnorderedCompareEflags;
        X87Control control = Control;
        if (Empty(0) || rightEmpty)
        {
            // Unordered is reported even when IE is unmasked; only the pops wait for a masked IE (host x87).
            bool masked = StackUnderflow();
            SetOrdering(Ordering.Unordered, toEflags, host);
            if (masked)
            {
                PopTimes(instruction.Pops);
            }

            return X87Outcome.Completed;
        }

        Float80 left = St(0);
        X87Exceptions flags = X87Exceptions.None;
        Ordering ordering;
        Float80Class leftClass = left.Class;
        Float80Class rightClass = right.Class;
        if (leftClass == Float80Class.Unsupported || rightClass == Float80Class.Unsupported
            || leftClass == Float80Class.SignalingNaN || rightClass == Float80Class.SignalingNaN)
        {
            flags = X87Exceptions.Invalid;
            ordering = Ordering.Unordered;
        }
        else if (left.IsNaN || right.IsNaN)
        {
            // FCOM and FTST signal IE on a QNaN too; FUCOM does not (SDM vol. 2, FUCOM).
            flags = unordered ? X87Exceptions.None : X87Exceptions.Invalid;
            ordering = Ordering.Unordered;
        }
        else
        {
            // DE is reported, masked or not, and the comparison still completes (checked on a host x87).
            X87Arithmetic.TryDenormal(left, right, control, narrowDenormal, out flags);
            ordering = Order(left, right);
        }

        // Even with IE or DE unmasked the condition codes (or EFLAGS) are written (checked on a host x87).
        SetC1(false);
        Raise(flags);
        SetOrdering(ordering, toEflags, host);
        if (!control.AnyUnmasked(flags))
        {
            // An unmasked exception leaves the stack as it was (FCOMP/FCOMPP/FCOMIP do not pop).
            PopTimes(instruction.Pops);
        }

        return X87Outcome.Completed;
    }

    private void PopTimes(int pops)
    {
        for (int count = 0; count < pops; count++)
        {
            Pop();
        }
    }

    private void SetOrdering(Ordering ordering, bool toEflags, IFpuHost host)
    {
        bool c0 = ordering is Ordering.Less or Ordering.Unordered;
        bool c2 = ordering == Ordering.Unordered;
        bool c3 = ordering is Ordering.Equal or Ordering.Unordered;
        if (toEflags)
        {
            // FCOMI: ZF=C3, PF=C2, CF=C0; OF, SF and AF cleared (SDM vol. 2, FCOMI, table 3-31).
            uint eflags = host.Eflags & ~(CarryFlag | ParityFlag | ZeroFlag | OverflowFlag | SignFlag | AuxiliaryFlag);
            eflags |= (c0 ? CarryFlag : 0) | (c2 ? ParityFlag : 0) | (c3 ? ZeroFlag : 0);
            host.Eflags = eflags;
            SetC1(false);
            return;
        }

        SetConditions(c0, false, c2, c3);
    }

    /// <summary>Orders two non-NaN supported values (±0 are equal).</summary>
    private static Ordering Order(Float80 left, Float80 right)
    {
        int sign = Math.Sign(Magnitude(left).CompareTo(Magnitude(right)));
        bool leftZero = left.Class == Float80Class.Zero;
        bool rightZero = right.Class == Float80Class.Zero;
        if (leftZero && rightZero)
        {
            return Ordering.Equal;
        }

        int leftSign = left.Sign && !leftZero ? -1 : 1;
        int rightSign = right.Sign && !rightZero ? -1 : 1;
        if (leftSign != rightSign)
        {
            return leftSign < rightSign ? Ordering.Less : Ordering.Greater;
        }

        int order = leftSign * sign;
        return order == 0 ? Ordering.Equal : order < 0 ? Ordering.Less : Ordering.Greater;
    }

    /// <summary>A total order key on magnitudes: infinity above all finite values, denormals normalized.</summary>
    private static (int Exponent, UInt128 Significand) Magnitude(Float80 value) => value.Class switch
    {
        Float80Class.Zero => (int.MinValue, UInt128.Zero),
        Float80Class.Infinity => (int.MaxValue, UInt128.Zero),
        _ => (ExactReal.FromFloat80(value).Exponent, ExactReal.FromFloat80(value).Significand),
    };

    private X87Outcome Examine()
    {
        Float80 value = St(0);
        // C3 C2 C0 (SDM vol. 2, FXAM table): 000 unsupported, 001 NaN, 010 normal, 011 infinity, 100 zero,
        // 101 empty, 110 denormal; C1 is the sign.
        (bool c3, bool c2, bool c0) = Empty(0) ? (true, false, true) : value.Class switch
        {
            Float80Class.Unsupported => (false, false, false),
            Float80Class.QuietNaN or Float80Class.SignalingNaN => (false, false, true),
            Float80Class.Normal => (false, true, false),
            Float80Class.Infinity => (false, true, true),
            Float80Class.Zero => (true, false, false),
            _ => (true, true, false),
        };
        SetConditions(c0, value.Sign, c2, c3);
        return X87Outcome.Completed;
    }

    private X87Outcome ConditionalMove(in X87Instruction instruction, IFpuHost host)
    {
        int index = instruction.StackIndex;
        if (Empty(0) || Empty(index))
        {
            UnderflowInto(0, 0);
            return X87Outcome.Completed;
        }

        SetC1(false);
        uint eflags = host.Eflags;
        bool below = (eflags & CarryFlag) != 0;
        bool equal = (eflags & ZeroFlag) != 0;
        bool unordered = (eflags & ParityFlag) != 0;
        bool take = (X87Condition)instruction.Selector switch
        {
            X87Condition.Below => below,
            X87Condition.Equal => equal,
            X87Condition.BelowOrEqual => below || equal,
            X87Condition.Unordered => unordered,
            X87Condition.NotBelow => !below,
            X87Condition.NotEqual => !equal,
            X87Condition.NotBelowOrEqual => !below && !equal,
            _ => !unordered,
        };
        if (take)
        {
            SetSt(0, St(index));
        }

        return X87Outcome.Completed;
    }
}

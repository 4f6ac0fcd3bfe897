namespace ImgTool.Machine.Cpu.X87;

/// <summary>The transcendental instructions on the register stack (SDM vol. 2; C2 reports an out-of-range argument).</summary>
internal sealed partial class X87Fpu
{
    private X87Outcome TranscendentalUnary(X87Operation operation)
    {
        if (Empty(0))
        {
            UnderflowInto(0, 0);
            return X87Outcome.Completed;
        }

        Float80 value = St(0);
        if (operation != X87Operation.TwoToXMinusOne)
        {
            bool outOfRange = X87Transcendental.OutOfTrigRange(value);
            SetC2(outOfRange);
            if (outOfRange)
            {
                return X87Outcome.Completed;
            }
        }

        X87Control control = Control;
        X87Result result = operation switch
        {
            X87Operation.TwoToXMinusOne => X87Transcendental.TwoToXMinusOne(value, control),
            X87Operation.Sine => X87Transcendental.SineCosine(value, control).Sine,
            _ => X87Transcendental.SineCosine(value, control).Cosine,
        };
        Commit(result, 0, 0);
        return X87Outcome.Completed;
    }

    /// <summary>FSINCOS (ST(0) = cos, ST(1) = sin) and FPTAN (ST(0) = 1.0, ST(1) = tan).</summary>
    private X87Outcome TranscendentalPush(X87Operation operation)
    {
        if (Empty(0))
        {
            if (StackUnderflow())
            {
                SetSt(0, Float80.Indefinite);
                Push(Float80.Indefinite);
            }

            return X87Outcome.Completed;
        }

        Float80 value = St(0);
        // The stack overflow is checked before the argument range (host x87).
        if (!Empty(StackMask))
        {
            SetC1(true);
            Raise(X87Exceptions.Invalid | X87Exceptions.StackFault);
            if (Control.IsMasked(X87Exceptions.Invalid))
            {
                SetSt(0, Float80.Indefinite);
                Push(Float80.Indefinite);
            }

            return X87Outcome.Completed;
        }

        bool outOfRange = X87Transcendental.OutOfTrigRange(value);
        SetC2(outOfRange);
        if (outOfRange)
        {
            return X87Outcome.Completed;
        }

        X87Control control = Control;
        X87Result first;
        X87Result pushed;
        if (operation == X87Operation.SineCosine)
        {
            (first, pushed) = X87Transcendental.SineCosine(value, control);
        }
        else
        {
            first = X87Transcendental.Tangent(value, control);
            // A NaN result is pushed as the NaN, otherwise 1.0 (SDM vol. 2, FPTAN).
            pushed = first.Value.IsNaN ? first : new X87Result(Float80.One, first.Exceptions, false, first.Store);
        }

        SetC1(pushed.RoundedUp || first.RoundedUp);
        Raise(first.Exceptions | pushed.Exceptions);
        if (first.Store && pushed.Store)
        {
            SetSt(0, first.Value);
            Push(pushed.Value);
        }

        return X87Outcome.Completed;
    }

    /// <summary>FPATAN, FYL2X, FYL2XP1: ST(1) = f(ST(1), ST(0)), then pop.</summary>
    private X87Outcome TranscendentalBinary(X87Operation operation)
    {
        if (Empty(0) || Empty(1))
        {
            UnderflowInto(1, 1);
            return X87Outcome.Completed;
        }

        Float80 x = St(0);
        Float80 y = St(1);
        X87Control control = Control;
        X87Result result = operation switch
        {
            X87Operation.YLog2X => X87Transcendental.YLog2X(x, y, control),
            X87Operation.YLog2XPlusOne => X87Transcendental.YLog2XPlusOne(x, y, control),
            _ => X87Transcendental.PartialArcTangent(x, y, control),
        };
        Commit(result, 1, 1);
        return X87Outcome.Completed;
    }
}

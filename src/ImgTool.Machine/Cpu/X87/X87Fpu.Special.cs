namespace ImgTool.Machine.Cpu.X87;

/// <summary>FPREM/FPREM1, FSCALE and FXTRACT on the register stack.</summary>
internal sealed partial class X87Fpu
{
    private X87Outcome Remainder(bool ieee)
    {
        if (Empty(0) || Empty(1))
        {
            UnderflowInto(0, 0);
            return X87Outcome.Completed;
        }

        RemainderResult remainder = X87Special.Remainder(St(0), St(1), ieee, Control);
        Raise(remainder.Result.Exceptions);
        if (!remainder.Result.Store)
        {
            return X87Outcome.Completed;
        }

        // C0 = Q2, C3 = Q1, C1 = Q0; C2 = 1 when the reduction is incomplete (SDM vol. 2, FPREM).
        int quotient = remainder.QuotientLowBits;
        SetConditions((quotient & 4) != 0, (quotient & 1) != 0, remainder.Incomplete, (quotient & 2) != 0);
        SetSt(0, remainder.Result.Value);
        return X87Outcome.Completed;
    }

    private X87Outcome Scale()
    {
        if (Empty(0) || Empty(1))
        {
            UnderflowInto(0, 0);
            return X87Outcome.Completed;
        }

        Commit(X87Special.Scale(St(0), St(1), Control), 0, 0);
        return X87Outcome.Completed;
    }

    private X87Outcome Extract()
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

        if (!Empty(StackMask))
        {
            // Stack overflow: masked, ST(0) and the pushed register both get the indefinite (SDM vol. 2, FXTRACT).
            SetC1(true);
            Raise(X87Exceptions.Invalid | X87Exceptions.StackFault);
            if (Control.IsMasked(X87Exceptions.Invalid))
            {
                SetSt(0, Float80.Indefinite);
                Push(Float80.Indefinite);
            }

            return X87Outcome.Completed;
        }

        (X87Result exponent, X87Result significand) = X87Special.Extract(St(0), Control);
        SetC1(false);
        Raise(exponent.Exceptions | significand.Exceptions);
        if (exponent.Store)
        {
            SetSt(0, exponent.Value);
            Push(significand.Value);
        }

        return X87Outcome.Completed;
    }
}

namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1: special operands per the SDM vol. 2 tables, finite
/// operands through <see cref="TranscendentalMath"/> and one rounding by RC to 64 bits (PC does not apply).
/// </summary>
internal static class X87Transcendental
{
    /// <summary>FSIN/FCOS/FSINCOS/FPTAN leave ST(0) alone and set C2 when |x| &gt;= 2^63 (SDM vol. 2, FSIN).</summary>
    public const int MaxTrigExponent = Float80.ExponentBias + 63;

    public static bool OutOfTrigRange(Float80 value) =>
        value.Class == Float80Class.Normal && value.BiasedExponent >= MaxTrigExponent;

    /// <summary>F2XM1 returns an argument with |x| &gt; 1 unchanged, signalling PE (checked on a host x87).</summary>
    private const int TwoToXMaxExponent = Float80.ExponentBias;

    /// <summary>sin and cos of ST(0) (both computed; each caller takes what it needs).</summary>
    public static (X87Result Sine, X87Result Cosine) SineCosine(Float80 value, X87Control control)
    {
        if (X87Arithmetic.TryInvalidOrNaN(value, control, out X87Result special))
        {
            return (special, special);
        }

        Float80Class kind = value.Class;
        if (kind == Float80Class.Infinity)
        {
            X87Result invalid = X87Arithmetic.Invalid(control);
            return (invalid, invalid);
        }

        if (X87Arithmetic.TryDenormal(value, value, control, false, out X87Exceptions flags))
        {
            return (X87Result.Stopped(flags), X87Result.Stopped(flags));
        }

        if (kind == Float80Class.Zero)
        {
            return (new X87Result(value, flags, false, true), new X87Result(Float80.One, flags, false, true));
        }

        (BigReal r, int quadrant) = TranscendentalMath.Reduce(value);
        BigReal sine = TranscendentalMath.Sine(r);
        BigReal cosine = TranscendentalMath.Cosine(r);
        (BigReal sinX, BigReal cosX) = quadrant switch
        {
            0 => (sine, cosine),
            1 => (cosine, sine.Negate()),
            2 => (sine.Negate(), cosine.Negate()),
            _ => (cosine.Negate(), sine),
        };
        return (Round(sinX, control, flags), Round(cosX, control, flags));
    }

    public static X87Result Tangent(Float80 value, X87Control control)
    {
        if (value.Class == Float80Class.Zero)
        {
            return new X87Result(value, X87Exceptions.None, false, true);
        }

        (X87Result sine, _) = SineCosine(value, control);
        if (!sine.Store || value.Class is not (Float80Class.Normal or Float80Class.Denormal))
        {
            return sine;
        }

        (BigReal r, int quadrant) = TranscendentalMath.Reduce(value);
        BigReal s = TranscendentalMath.Sine(r);
        BigReal c = TranscendentalMath.Cosine(r);
        BigReal tangent = (quadrant & 1) == 0 ? s / c : (c / s).Negate();
        return Round(tangent, control, sine.Exceptions & X87Exceptions.Denormal);
    }

    /// <summary>F2XM1: 2^x - 1 (the SDM defines it for -1 &lt;= x &lt;= 1; other finite x are computed all the same).</summary>
    public static X87Result TwoToXMinusOne(Float80 value, X87Control control)
    {
        if (X87Arithmetic.TryInvalidOrNaN(value, control, out X87Result special))
        {
            return special;
        }

        Float80Class kind = value.Class;
        if (kind == Float80Class.Infinity)
        {
            return new X87Result(value.Sign ? Float80.One.Negate() : value, X87Exceptions.None, false, true);
        }

        if (X87Arithmetic.TryDenormal(value, value, control, false, out X87Exceptions flags))
        {
            return X87Result.Stopped(flags);
        }

        if (kind == Float80Class.Zero)
        {
            return new X87Result(value, flags, false, true);
        }

        if (value.BiasedExponent > TwoToXMaxExponent || (value.BiasedExponent == TwoToXMaxExponent && value.Significand != Float80.IntegerBit))
        {
            return new X87Result(value, flags | X87Exceptions.Precision, false, true);
        }

        const int Limit = 1 << 16;
        BigReal x = BigReal.FromFloat80(value);
        if (x.Magnitude >= 16)
        {
            // Far outside the defined range: 2^x overflows or 2^x - 1 rounds to -1.
            x = BigReal.FromInteger(value.Sign ? -Limit : Limit);
        }

        long whole = 0;
        if (x.Magnitude >= 0)
        {
            RoundedInteger integer = IntegerConversion.RoundToInteger(value, RoundingControl.TowardZero);
            whole = Math.Min((long)(ulong)integer.Magnitude, Limit) * (value.Sign ? -1 : 1);
        }

        BigReal fraction = x - BigReal.FromInteger(whole);
        BigReal power = TranscendentalMath.ExpMinusOne(fraction * TranscendentalMath.LnTwo);
        BigReal result = whole == 0 ? power : (power + BigReal.One).Scale((int)whole) - BigReal.One;
        return Round(result, control, flags);
    }

    /// <summary>FYL2X: ST(1) * log2(ST(0)) (special cases after QEMU's and the SDM's FYL2X table).</summary>
    public static X87Result YLog2X(Float80 x, Float80 y, X87Control control)
    {
        if (X87Arithmetic.TryInvalidOrNaN(x, y, control, out X87Result special))
        {
            return special;
        }

        Float80Class kindX = x.Class;
        Float80Class kindY = y.Class;
        if (x.Sign && kindX != Float80Class.Zero)
        {
            return X87Arithmetic.Invalid(control);
        }

        if (kindX == Float80Class.Zero && kindY is Float80Class.Normal or Float80Class.Denormal)
        {
            // log2(0) = -infinity: ZE alone, a denormal ST(1) is not reported (checked on a host x87).
            return control.IsMasked(X87Exceptions.ZeroDivide)
                ? new X87Result(Float80.Infinity(!y.Sign), X87Exceptions.ZeroDivide, false, true)
                : X87Result.Stopped(X87Exceptions.ZeroDivide);
        }

        if (X87Arithmetic.TryDenormal(x, y, control, false, out X87Exceptions flags))
        {
            return X87Result.Stopped(flags);
        }

        int versusOne = kindX == Float80Class.Infinity ? 1 : kindX == Float80Class.Zero ? -1 : CompareToOne(x);
        if (kindY == Float80Class.Infinity)
        {
            return versusOne == 0 ? X87Arithmetic.Invalid(control, flags)
                : new X87Result(versusOne < 0 ? y.Negate() : y, flags, false, true);
        }

        if (kindX == Float80Class.Infinity)
        {
            return kindY == Float80Class.Zero ? X87Arithmetic.Invalid(control, flags)
                : new X87Result(Float80.Infinity(y.Sign), flags, false, true);
        }

        if (kindX == Float80Class.Zero)
        {
            if (kindY == Float80Class.Zero)
            {
                return X87Arithmetic.Invalid(control, flags);
            }

            flags |= X87Exceptions.ZeroDivide;
            return control.IsMasked(X87Exceptions.ZeroDivide)
                ? new X87Result(Float80.Infinity(!y.Sign), flags, false, true)
                : X87Result.Stopped(flags);
        }

        if (kindY == Float80Class.Zero || versusOne == 0)
        {
            // log2(1) = 0 exactly; y = 0 gives a zero signed by the product's sign.
            bool negative = versusOne == 0 ? y.Sign : y.Sign ^ (versusOne < 0);
            return new X87Result(Float80.Zero(negative), flags, false, true);
        }

        BigReal result = BigReal.FromFloat80(y) * TranscendentalMath.LogTwo(BigReal.FromFloat80(x));
        return Round(result, control, flags);
    }

    /// <summary>FYL2XP1: ST(1) * log2(ST(0) + 1), for |ST(0)| &lt; 1 - sqrt(2)/2 (others computed while x &gt; -1).</summary>
    public static X87Result YLog2XPlusOne(Float80 x, Float80 y, X87Control control)
    {
        if (X87Arithmetic.TryInvalidOrNaN(x, y, control, out X87Result special))
        {
            return special;
        }

        Float80Class kindX = x.Class;
        Float80Class kindY = y.Class;
        if (kindX == Float80Class.Infinity && x.Sign)
        {
            return X87Arithmetic.Invalid(control);
        }

        if (kindX == Float80Class.Zero || kindY == Float80Class.Zero || kindY == Float80Class.Infinity || kindX == Float80Class.Infinity)
        {
            // The product's rules (0 * inf invalid) decide: log2(1 + x) has x's sign and is infinite only for x = +inf.
            return X87Arithmetic.Multiply(x, y, control, false);
        }

        if (X87Arithmetic.TryDenormal(x, y, control, false, out X87Exceptions flags))
        {
            return X87Result.Stopped(flags);
        }

        BigReal argument = BigReal.FromFloat80(x);
        if (argument.IsNegative && argument.Magnitude >= 0)
        {
            // x <= -1 is outside the domain: the hardware returns x itself, with PE (checked on a host x87).
            return new X87Result(x, flags | X87Exceptions.Precision, false, true);
        }

        // Small x keeps its relative precision through ln(1 + x); elsewhere 1 + x is exact enough to take log2 of.
        const int DirectLogMagnitude = -2;
        BigReal logarithm = argument.Magnitude < DirectLogMagnitude
            ? TranscendentalMath.LnOnePlus(argument) / TranscendentalMath.LnTwo
            : TranscendentalMath.LogTwo(argument + BigReal.One);
        BigReal result = BigReal.FromFloat80(y) * logarithm;
        return Round(result, control, flags);
    }

    /// <summary>FPATAN: atan2(ST(1), ST(0)) with the SDM's FPATAN table for zeros and infinities.</summary>
    public static X87Result PartialArcTangent(Float80 x, Float80 y, X87Control control)
    {
        if (X87Arithmetic.TryInvalidOrNaN(x, y, control, out X87Result special))
        {
            return special;
        }

        if (X87Arithmetic.TryDenormal(x, y, control, false, out X87Exceptions flags))
        {
            return X87Result.Stopped(flags);
        }

        Float80Class kindX = x.Class;
        Float80Class kindY = y.Class;
        BigReal pi = TranscendentalMath.Pi;
        BigReal angle;
        if (kindY == Float80Class.Zero)
        {
            if (!x.Sign)
            {
                return new X87Result(y, flags, false, true);
            }

            angle = pi;
        }
        else if (kindY == Float80Class.Infinity)
        {
            angle = kindX == Float80Class.Infinity ? (x.Sign ? pi.Scale(-2) * BigReal.FromInteger(3) : pi.Scale(-2)) : pi.Scale(-1);
        }
        else if (kindX == Float80Class.Infinity)
        {
            if (!x.Sign)
            {
                return new X87Result(Float80.Zero(y.Sign), flags, false, true);
            }

            angle = pi;
        }
        else if (kindX == Float80Class.Zero)
        {
            angle = pi.Scale(-1);
        }
        else
        {
            return Round(TranscendentalMath.Atan2(BigReal.FromFloat80(y), BigReal.FromFloat80(x)), control, flags);
        }

        return Round(y.Sign ? angle.Negate() : angle, control, flags);
    }

    private static int CompareToOne(Float80 value)
    {
        BigReal difference = BigReal.FromFloat80(value) - BigReal.One;
        return difference.IsZero ? 0 : difference.IsNegative ? -1 : 1;
    }

    private static X87Result Round(BigReal value, X87Control control, X87Exceptions flags) =>
        X87Arithmetic.Deliver(value.ToExactReal(), FloatFormat.Extended, control, flags);
}

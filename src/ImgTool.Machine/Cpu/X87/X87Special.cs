using System.Numerics;

namespace ImgTool.Machine.Cpu.X87;

/// <summary>The quotient bits FPREM/FPREM1 report, and whether the reduction is complete (SDM vol. 2, FPREM).</summary>
internal readonly record struct RemainderResult(X87Result Result, int QuotientLowBits, bool Incomplete);

/// <summary>FRNDINT, FPREM, FPREM1, FSCALE and FXTRACT as pure functions (SDM vol. 2).</summary>
internal static class X87Special
{
    /// <summary>FPREM reduces an exponent difference of 64 or more by 32 + (difference mod 32) bits per step (AMD APM vol. 5, FPREM).</summary>
    private const int FullReductionLimit = 64;
    private const int PartialStepBase = 32;
    /// <summary>Beyond this, FSCALE's result over- or underflows whatever ST(0) is; clamping keeps the arithmetic in range.</summary>
    private const int ScaleClamp = 1 << 20;

    public static X87Result RoundToInteger(Float80 value, X87Control control)
    {
        if (X87Arithmetic.TryInvalidOrNaN(value, control, out X87Result special))
        {
            return special;
        }

        if (X87Arithmetic.TryDenormal(value, value, control, false, out X87Exceptions flags))
        {
            return X87Result.Stopped(flags);
        }

        if (value.Class is Float80Class.Zero or Float80Class.Infinity || value.BiasedExponent >= Float80.ExponentBias + 63)
        {
            return new X87Result(value, flags, false, true);
        }

        RoundedInteger rounded = IntegerConversion.RoundToInteger(value, control.Rounding);
        if (rounded.Inexact)
        {
            flags |= X87Exceptions.Precision;
        }

        Float80 result = rounded.Magnitude == UInt128.Zero
            ? Float80.Zero(value.Sign)
            : FloatEncoding.ToExtended(Rounder.Round(ExactReal.Normalized(value.Sign, 127, rounded.Magnitude, false), FloatFormat.Extended, control.Rounding));
        return new X87Result(result, flags, rounded.RoundedUp, true);
    }

    /// <summary>FPREM (truncating quotient) or FPREM1 (IEEE, nearest-even quotient) of ST(0) by ST(1).</summary>
    public static RemainderResult Remainder(Float80 dividend, Float80 divisor, bool ieee, X87Control control)
    {
        if (X87Arithmetic.TryInvalidOrNaN(dividend, divisor, control, out X87Result special))
        {
            return new RemainderResult(special, 0, false);
        }

        Float80Class top = dividend.Class;
        Float80Class bottom = divisor.Class;
        if (top == Float80Class.Infinity || bottom == Float80Class.Zero)
        {
            return new RemainderResult(X87Arithmetic.Invalid(control), 0, false);
        }

        if (X87Arithmetic.TryDenormal(dividend, divisor, control, false, out X87Exceptions flags))
        {
            return new RemainderResult(X87Result.Stopped(flags), 0, false);
        }

        if (top == Float80Class.Zero)
        {
            return new RemainderResult(new X87Result(dividend, flags, false, true), 0, false);
        }

        if (bottom == Float80Class.Infinity)
        {
            // The dividend goes through the result path: a denormal comes out normalized or UE-adjusted (host x87).
            return new RemainderResult(X87Arithmetic.Deliver(ExactReal.FromFloat80(dividend), FloatFormat.Extended, control, flags), 0, false);
        }

        ExactReal a = ExactReal.FromFloat80(dividend);
        ExactReal b = ExactReal.FromFloat80(divisor);
        int difference = a.Exponent - b.Exponent;
        bool incomplete = difference >= FullReductionLimit;
        if (incomplete)
        {
            // Partial: reduce by a divisor scaled to leave 32..63 bits of difference, truncating (both instructions).
            int step = PartialStepBase + (difference % PartialStepBase);
            b = b with { Exponent = b.Exponent + difference - step };
            difference = step;
            ieee = false;
        }

        if (difference < -1 || (!ieee && difference < 0))
        {
            return new RemainderResult(X87Arithmetic.Deliver(a, FloatFormat.Extended, control, flags), 0, incomplete);
        }

        // Both on the lsb scale 2^(eb - 64): N = A * 2^(d+1), M = B * 2.
        BigInteger numerator = (BigInteger)(ulong)(a.Significand >> 64) << (difference + 1);
        BigInteger modulus = (BigInteger)(ulong)(b.Significand >> 64) << 1;
        BigInteger quotient = BigInteger.DivRem(numerator, modulus, out BigInteger remainder);
        bool sign = a.Sign;
        if (ieee)
        {
            BigInteger twice = remainder << 1;
            if (twice > modulus || (twice == modulus && !quotient.IsEven))
            {
                remainder = modulus - remainder;
                quotient += 1;
                sign = !sign;
            }
        }

        int lowBits = incomplete ? 0 : (int)(quotient & 7);
        if (remainder.IsZero)
        {
            return new RemainderResult(new X87Result(Float80.Zero(a.Sign), flags, false, true), lowBits, incomplete);
        }

        ExactReal exact = ExactReal.FromBigInteger(sign, remainder, b.Exponent - 64);
        return new RemainderResult(X87Arithmetic.Deliver(exact, FloatFormat.Extended, control, flags), lowBits, incomplete);
    }

    /// <summary>FSCALE: ST(0) * 2^trunc(ST(1)), one rounding at extended precision.</summary>
    public static X87Result Scale(Float80 value, Float80 scale, X87Control control)
    {
        if (X87Arithmetic.TryInvalidOrNaN(value, scale, control, out X87Result special))
        {
            return special;
        }

        Float80Class kind = value.Class;
        Float80Class scaleKind = scale.Class;
        if (scaleKind == Float80Class.Infinity)
        {
            if (scale.Sign)
            {
                return kind == Float80Class.Infinity ? X87Arithmetic.Invalid(control) : Flagged(Float80.Zero(value.Sign), value, scale, control);
            }

            return kind == Float80Class.Zero ? X87Arithmetic.Invalid(control) : Flagged(Float80.Infinity(value.Sign), value, scale, control);
        }

        if (X87Arithmetic.TryDenormal(value, scale, control, false, out X87Exceptions flags))
        {
            return X87Result.Stopped(flags);
        }

        if (kind is Float80Class.Zero or Float80Class.Infinity)
        {
            return new X87Result(value, flags, false, true);
        }

        RoundedInteger count = IntegerConversion.RoundToInteger(scale, RoundingControl.TowardZero);
        int magnitude = count.TooLarge || count.Magnitude > ScaleClamp ? ScaleClamp : (int)count.Magnitude;
        int shift = count.Sign ? -magnitude : magnitude;
        ExactReal exact = ExactReal.FromFloat80(value);
        return X87Arithmetic.Deliver(exact with { Exponent = exact.Exponent + shift }, FloatFormat.Extended, control, flags);
    }

    private static X87Result Flagged(Float80 result, Float80 value, Float80 scale, X87Control control)
    {
        bool denormal = value.Class == Float80Class.Denormal || scale.Class == Float80Class.Denormal;
        if (denormal && !control.IsMasked(X87Exceptions.Denormal))
        {
            return X87Result.Stopped(X87Exceptions.Denormal);
        }

        return new X87Result(result, denormal ? X87Exceptions.Denormal : X87Exceptions.None, false, true);
    }

    /// <summary>FXTRACT: (exponent, significand); the caller stores the exponent in ST(0) and pushes the significand.</summary>
    public static (X87Result Exponent, X87Result Significand) Extract(Float80 value, X87Control control)
    {
        if (X87Arithmetic.TryInvalidOrNaN(value, control, out X87Result special))
        {
            return (special, special);
        }

        Float80Class kind = value.Class;
        if (kind == Float80Class.Infinity)
        {
            return (new X87Result(Float80.PositiveInfinity, X87Exceptions.None, false, true), new X87Result(value, X87Exceptions.None, false, true));
        }

        if (kind == Float80Class.Zero)
        {
            // The exponent of zero is -infinity, signalled as a division by zero (SDM vol. 2, FXTRACT).
            X87Exceptions zero = X87Exceptions.ZeroDivide;
            if (!control.IsMasked(zero))
            {
                return (X87Result.Stopped(zero), X87Result.Stopped(zero));
            }

            return (new X87Result(Float80.NegativeInfinity, zero, false, true), new X87Result(value, zero, false, true));
        }

        if (X87Arithmetic.TryDenormal(value, value, control, false, out X87Exceptions flags))
        {
            return (X87Result.Stopped(flags), X87Result.Stopped(flags));
        }

        ExactReal exact = ExactReal.FromFloat80(value);
        Float80 exponent = FloatEncoding.FromInteger(exact.Exponent);
        Float80 significand = new((ushort)(Float80.ExponentBias | (value.Sign ? Float80.SignBit : 0)), (ulong)(exact.Significand >> 64));
        return (new X87Result(exponent, flags, false, true), new X87Result(significand, flags, false, true));
    }
}

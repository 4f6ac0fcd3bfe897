namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// The x87 arithmetic with its special cases (SDM vol. 1, 4.8.3 NaNs and table 4-7, 4.9.1 exceptions; vol. 2 FADD,
/// FMUL, FDIV, FSQRT tables): pure functions of the operands and the control word.
/// </summary>
internal static class X87Arithmetic
{
    /// <summary>The bias adjustment of unmasked overflow/underflow results delivered to a register (SDM vol. 1, 8.5.4-5).</summary>
    public const int BiasAdjust = 24576;

    public static X87Result Add(Float80 a, Float80 b, bool subtract, X87Control control, bool narrowDenormal)
    {
        if (TryInvalidOrNaN(a, b, control, out X87Result special))
        {
            return special;
        }

        if (TryDenormal(a, b, control, narrowDenormal, out X87Exceptions flags))
        {
            return X87Result.Stopped(flags);
        }

        bool bSign = b.Sign ^ subtract;
        Float80Class classA = a.Class;
        Float80Class classB = b.Class;
        if (classA == Float80Class.Infinity || classB == Float80Class.Infinity)
        {
            if (classA == Float80Class.Infinity && classB == Float80Class.Infinity && a.Sign != bSign)
            {
                return Invalid(control, flags);
            }

            bool sign = classA == Float80Class.Infinity ? a.Sign : bSign;
            return new X87Result(Float80.Infinity(sign), flags, false, true);
        }

        RoundingControl rounding = control.Rounding;
        if (classA == Float80Class.Zero && classB == Float80Class.Zero)
        {
            bool sign = a.Sign == bSign ? a.Sign : rounding == RoundingControl.Down;
            return new X87Result(Float80.Zero(sign), flags, false, true);
        }

        ExactReal x = classA == Float80Class.Zero ? default : ExactReal.FromFloat80(a);
        ExactReal y = classB == Float80Class.Zero ? default : ExactReal.FromFloat80(b.WithSign(bSign));
        ExactReal sum = ExactArithmetic.Add(x, y);
        if (sum.IsZero)
        {
            // An exact zero sum of opposite operands is +0, or -0 when rounding down (IEEE 754 section 6.3).
            return new X87Result(Float80.Zero(rounding == RoundingControl.Down), flags, false, true);
        }

        return Deliver(sum, control.ArithmeticFormat, control, flags);
    }

    public static X87Result Multiply(Float80 a, Float80 b, X87Control control, bool narrowDenormal)
    {
        if (TryInvalidOrNaN(a, b, control, out X87Result special))
        {
            return special;
        }

        if (TryDenormal(a, b, control, narrowDenormal, out X87Exceptions flags))
        {
            return X87Result.Stopped(flags);
        }

        bool sign = a.Sign ^ b.Sign;
        Float80Class classA = a.Class;
        Float80Class classB = b.Class;
        bool zero = classA == Float80Class.Zero || classB == Float80Class.Zero;
        if (classA == Float80Class.Infinity || classB == Float80Class.Infinity)
        {
            return zero ? Invalid(control, flags) : new X87Result(Float80.Infinity(sign), flags, false, true);
        }

        if (zero)
        {
            return new X87Result(Float80.Zero(sign), flags, false, true);
        }

        return Deliver(ExactArithmetic.Multiply(ExactReal.FromFloat80(a), ExactReal.FromFloat80(b)), control.ArithmeticFormat, control, flags);
    }

    public static X87Result Divide(Float80 dividend, Float80 divisor, X87Control control, bool narrowDenormal)
    {
        if (TryInvalidOrNaN(dividend, divisor, control, out X87Result special))
        {
            return special;
        }

        bool sign = dividend.Sign ^ divisor.Sign;
        Float80Class top = dividend.Class;
        Float80Class bottom = divisor.Class;
        if (bottom == Float80Class.Zero && top is Float80Class.Normal or Float80Class.Denormal)
        {
            // A finite dividend over zero is ZE alone: the hardware does not report a denormal dividend (checked on a host x87).
            return control.IsMasked(X87Exceptions.ZeroDivide)
                ? new X87Result(Float80.Infinity(sign), X87Exceptions.ZeroDivide, false, true)
                : X87Result.Stopped(X87Exceptions.ZeroDivide);
        }

        if (TryDenormal(dividend, divisor, control, narrowDenormal, out X87Exceptions flags))
        {
            return X87Result.Stopped(flags);
        }

        if (top == Float80Class.Infinity)
        {
            return bottom == Float80Class.Infinity ? Invalid(control, flags) : new X87Result(Float80.Infinity(sign), flags, false, true);
        }

        if (bottom == Float80Class.Infinity)
        {
            return new X87Result(Float80.Zero(sign), flags, false, true);
        }

        if (bottom == Float80Class.Zero)
        {
            if (top == Float80Class.Zero)
            {
                return Invalid(control, flags);
            }

            flags |= X87Exceptions.ZeroDivide;
            return control.IsMasked(X87Exceptions.ZeroDivide)
                ? new X87Result(Float80.Infinity(sign), flags, false, true)
                : X87Result.Stopped(flags);
        }

        if (top == Float80Class.Zero)
        {
            return new X87Result(Float80.Zero(sign), flags, false, true);
        }

        return Deliver(ExactArithmetic.Divide(ExactReal.FromFloat80(dividend), ExactReal.FromFloat80(divisor)), control.ArithmeticFormat, control, flags);
    }

    public static X87Result SquareRoot(Float80 a, X87Control control)
    {
        if (TryInvalidOrNaN(a, control, out X87Result special))
        {
            return special;
        }

        Float80Class kind = a.Class;
        if (kind == Float80Class.Zero)
        {
            return new X87Result(a, X87Exceptions.None, false, true);
        }

        if (a.Sign)
        {
            // A negative operand is invalid before it is a denormal (checked on a host x87).
            return Invalid(control);
        }

        if (TryDenormal(a, a, control, false, out X87Exceptions flags))
        {
            return X87Result.Stopped(flags);
        }

        if (kind == Float80Class.Infinity)
        {
            return new X87Result(a, flags, false, true);
        }

        return Deliver(ExactArithmetic.SquareRoot(ExactReal.FromFloat80(a)), control.ArithmeticFormat, control, flags);
    }

    /// <summary>Rounds an exact result to a register, with the masked and unmasked OE/UE responses (SDM vol. 1, 4.9.1.4-5, 8.5.4-5).</summary>
    public static X87Result Deliver(in ExactReal exact, FloatFormat format, X87Control control, X87Exceptions flags)
    {
        RoundingControl rounding = control.Rounding;
        RoundedReal rounded = Rounder.Round(exact, format, rounding);
        if (rounded.Overflowed || rounded.Tiny)
        {
            X87Exceptions kind = rounded.Overflowed ? X87Exceptions.Overflow : X87Exceptions.Underflow;
            if (!control.IsMasked(kind))
            {
                // Unmasked: deliver the exactly rounded result with the exponent wrapped by 2^24576.
                RoundedReal unbounded = Rounder.Round(exact, format.Unbounded, rounding);
                int adjust = rounded.Overflowed ? -BiasAdjust : BiasAdjust;
                unbounded = unbounded with { Exponent = unbounded.Exponent + adjust };
                if (unbounded.Exponent >= format.MinExponent && unbounded.Exponent <= format.MaxExponent)
                {
                    flags |= kind | (unbounded.Inexact ? X87Exceptions.Precision : X87Exceptions.None);
                    return new X87Result(FloatEncoding.ToExtended(unbounded), flags, unbounded.RoundedUp, true);
                }

                // Out of range even after the adjustment (FSCALE can do that): infinity or zero whatever RC is,
                // with PE, and C1 set for the infinity (checked on a host x87).
                Float80 extreme = rounded.Overflowed ? Float80.Infinity(exact.Sign) : Float80.Zero(exact.Sign);
                return new X87Result(extreme, flags | kind | X87Exceptions.Precision, rounded.Overflowed, true);
            }

            if (rounded.Overflowed || rounded.MaskedUnderflow)
            {
                flags |= kind;
            }
        }

        if (rounded.Inexact)
        {
            flags |= X87Exceptions.Precision;
        }

        return new X87Result(FloatEncoding.ToExtended(rounded), flags, rounded.RoundedUp, true);
    }

    /// <summary>The masked response to an invalid operation: the real indefinite; unmasked, nothing is stored.</summary>
    public static X87Result Invalid(X87Control control, X87Exceptions flags = X87Exceptions.None)
    {
        flags |= X87Exceptions.Invalid;
        return control.IsMasked(X87Exceptions.Invalid) ? new X87Result(Float80.Indefinite, flags, false, true) : X87Result.Stopped(flags);
    }

    /// <summary>Unsupported operands (IE, indefinite) and NaN propagation for two operands (SDM vol. 1, table 4-7).</summary>
    public static bool TryInvalidOrNaN(Float80 a, Float80 b, X87Control control, out X87Result result)
    {
        Float80Class classA = a.Class;
        Float80Class classB = b.Class;
        if (classA == Float80Class.Unsupported || classB == Float80Class.Unsupported)
        {
            result = Invalid(control);
            return true;
        }

        bool nanA = classA is Float80Class.QuietNaN or Float80Class.SignalingNaN;
        bool nanB = classB is Float80Class.QuietNaN or Float80Class.SignalingNaN;
        if (!nanA && !nanB)
        {
            result = default;
            return false;
        }

        bool signalingA = classA == Float80Class.SignalingNaN;
        bool signalingB = classB == Float80Class.SignalingNaN;
        Float80 chosen;
        if (nanA && nanB && signalingA == signalingB)
        {
            chosen = LargerSignificand(a, b);
        }
        else if (nanA && nanB)
        {
            // One quiet, one signaling: the quiet one.
            chosen = signalingA ? b : a;
        }
        else
        {
            chosen = nanA ? a : b;
        }

        result = Propagate(chosen, signalingA || signalingB, control);
        return true;
    }

    public static bool TryInvalidOrNaN(Float80 a, X87Control control, out X87Result result)
    {
        Float80Class kind = a.Class;
        if (kind == Float80Class.Unsupported)
        {
            result = Invalid(control);
            return true;
        }

        if (kind is not (Float80Class.QuietNaN or Float80Class.SignalingNaN))
        {
            result = default;
            return false;
        }

        result = Propagate(a, kind == Float80Class.SignalingNaN, control);
        return true;
    }

    /// <summary>DE for a denormal operand; true when it is unmasked, which stops the instruction (SDM vol. 1, 4.9.1.2).</summary>
    public static bool TryDenormal(Float80 a, Float80 b, X87Control control, bool narrowDenormal, out X87Exceptions flags)
    {
        bool denormal = narrowDenormal || a.Class == Float80Class.Denormal || b.Class == Float80Class.Denormal;
        flags = denormal ? X87Exceptions.Denormal : X87Exceptions.None;
        return denormal && !control.IsMasked(X87Exceptions.Denormal);
    }

    private static X87Result Propagate(Float80 nan, bool signaling, X87Control control)
    {
        if (!signaling)
        {
            return new X87Result(nan.Quieted(), X87Exceptions.None, false, true);
        }

        return control.IsMasked(X87Exceptions.Invalid)
            ? new X87Result(nan.Quieted(), X87Exceptions.Invalid, false, true)
            : X87Result.Stopped(X87Exceptions.Invalid);
    }

    private static Float80 LargerSignificand(Float80 a, Float80 b)
    {
        ulong magnitudeA = a.Significand & ~Float80.IntegerBit;
        ulong magnitudeB = b.Significand & ~Float80.IntegerBit;
        if (magnitudeA != magnitudeB)
        {
            return magnitudeA > magnitudeB ? a : b;
        }

        // Equal payloads: the positive one (SoftFloat's x87 rule for the tie).
        return a.Sign ? b : a;
    }
}

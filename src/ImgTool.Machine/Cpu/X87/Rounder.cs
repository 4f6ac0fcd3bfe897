namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// IEEE 754 rounding of an exact intermediate to a format, as the x87 does it (SDM vol. 1, 4.8.4 rounding, 4.9.1.4
/// overflow, 4.9.1.5 underflow). Tininess is detected after rounding, as Intel processors do; a denormal result keeps
/// the fixed position of the least significant bit, so PC=24/53 denormals have fewer bits (the hardware's behaviour).
/// </summary>
internal static class Rounder
{
    public static RoundedReal Round(in ExactReal value, FloatFormat format, RoundingControl rounding)
    {
        if (value.Significand == UInt128.Zero)
        {
            // Only a sticky tail: a value far below the smallest denormal.
            if (!value.Sticky)
            {
                return new RoundedReal(value.Sign, 0, 0, false, false, false, false, false);
            }

            return RoundTinyTail(value, format, rounding);
        }

        int shift = value.Exponent < format.MinExponent ? format.MinExponent - value.Exponent : 0;
        RoundedReal result = RoundAt(value, format, rounding, shift);
        if (shift > 0)
        {
            // Tininess after rounding: would the result, rounded with an unbounded exponent, be below 2^MinExponent?
            RoundedReal unbounded = RoundAt(value, format, rounding, 0);
            bool tiny = unbounded.Exponent < format.MinExponent;
            result = result with { Tiny = tiny };
        }

        if (!result.IsZero && result.Exponent > format.MaxExponent)
        {
            return Overflow(value.Sign, format, rounding);
        }

        return result;
    }

    /// <summary>The masked overflow response: infinity or the largest finite value, by RC (SDM vol. 1, table 4-10).</summary>
    public static RoundedReal Overflow(bool sign, FloatFormat format, RoundingControl rounding)
    {
        bool toInfinity = rounding switch
        {
            RoundingControl.Nearest => true,
            RoundingControl.Up => !sign,
            RoundingControl.Down => sign,
            _ => false,
        };
        if (toInfinity)
        {
            return new RoundedReal(sign, format.MaxExponent + 1, Float80.IntegerBit, true, true, true, false, true);
        }

        ulong largest = ulong.MaxValue << (64 - format.Precision);
        return new RoundedReal(sign, format.MaxExponent, largest, false, true, false, false, true);
    }

    private static RoundedReal RoundAt(in ExactReal value, FloatFormat format, RoundingControl rounding, int shift)
    {
        // Keep the top (Precision - shift) bits of the 128-bit significand; the value is kept * 2^(lsbExponent).
        int drop = 128 - format.Precision + shift;
        UInt128 kept;
        bool guard;
        bool rest;
        if (drop > 128)
        {
            kept = UInt128.Zero;
            guard = false;
            rest = true;
        }
        else if (drop == 128)
        {
            kept = UInt128.Zero;
            guard = (value.Significand >> ExactReal.TopBit) != UInt128.Zero;
            rest = (value.Significand << 1) != UInt128.Zero || value.Sticky;
        }
        else
        {
            kept = value.Significand >> drop;
            guard = ((value.Significand >> (drop - 1)) & UInt128.One) != UInt128.Zero;
            rest = (value.Significand & ((UInt128.One << (drop - 1)) - UInt128.One)) != UInt128.Zero || value.Sticky;
        }

        bool inexact = guard || rest;
        bool increment = rounding switch
        {
            RoundingControl.Nearest => guard && (rest || (kept & UInt128.One) != UInt128.Zero),
            RoundingControl.Up => inexact && !value.Sign,
            RoundingControl.Down => inexact && value.Sign,
            _ => false,
        };
        if (increment)
        {
            kept += UInt128.One;
        }

        int lsbExponent = value.Exponent + 1 - format.Precision + shift;
        if (kept == UInt128.Zero)
        {
            return new RoundedReal(value.Sign, 0, 0, false, inexact, increment, true, false);
        }

        int length = 128 - (int)UInt128.LeadingZeroCount(kept);
        // A carry out of the top (all ones rounded up) makes kept one bit longer than the format.
        ulong significand = length <= 64 ? (ulong)(kept << (64 - length)) : (ulong)(kept >> (length - 64));
        return new RoundedReal(value.Sign, lsbExponent + length - 1, significand, false, inexact, increment, false, false);
    }

    private static RoundedReal RoundTinyTail(in ExactReal value, FloatFormat format, RoundingControl rounding)
    {
        bool awayFromZero = rounding switch
        {
            RoundingControl.Up => !value.Sign,
            RoundingControl.Down => value.Sign,
            _ => false,
        };
        if (!awayFromZero)
        {
            return new RoundedReal(value.Sign, 0, 0, false, true, false, true, false);
        }

        // The smallest denormal of the format.
        int exponent = format.MinExponent + 1 - format.Precision;
        return new RoundedReal(value.Sign, exponent, Float80.IntegerBit, false, true, true, true, false);
    }
}

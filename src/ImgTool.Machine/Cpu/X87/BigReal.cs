using System.Numerics;

namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// A working-precision binary float for the transcendentals: value = Mantissa * 2^Exponent, the mantissa kept to
/// <see cref="Precision"/> bits (truncated), far more than the 64 bits of the result (SDM vol. 1, 8.3.10 asks for
/// results within about 1 ulp).
/// </summary>
internal readonly record struct BigReal(BigInteger Mantissa, int Exponent)
{
    public const int Precision = 200;

    public static readonly BigReal Zero = new(BigInteger.Zero, 0);
    public static readonly BigReal One = new(BigInteger.One, 0);

    public bool IsZero => Mantissa.IsZero;

    public bool IsNegative => Mantissa.Sign < 0;

    /// <summary>The exponent of the leading bit (floor(log2|value|)); int.MinValue for zero.</summary>
    public int Magnitude => IsZero ? int.MinValue : Exponent + (int)BigInteger.Abs(Mantissa).GetBitLength() - 1;

    public static BigReal FromFloat80(Float80 value)
    {
        int biased = value.BiasedExponent == 0 ? 1 : value.BiasedExponent;
        BigInteger mantissa = value.Significand;
        return new BigReal(value.Sign ? -mantissa : mantissa, biased - Float80.ExponentBias - 63).Normalize();
    }

    public static BigReal FromInteger(long value) => new BigReal(value, 0).Normalize();

    public BigReal Negate() => new(-Mantissa, Exponent);

    public BigReal Abs() => new(BigInteger.Abs(Mantissa), Exponent);

    public BigReal Scale(int power) => new(Mantissa, Exponent + power);

    public static BigReal operator +(BigReal a, BigReal b)
    {
        if (a.IsZero)
        {
            return b;
        }

        if (b.IsZero)
        {
            return a;
        }

        // A term more than the working precision below the other only affects the truncated tail.
        if (a.Magnitude - b.Magnitude > Precision + 2)
        {
            return a;
        }

        if (b.Magnitude - a.Magnitude > Precision + 2)
        {
            return b;
        }

        int exponent = Math.Min(a.Exponent, b.Exponent);
        BigInteger sum = (a.Mantissa << (a.Exponent - exponent)) + (b.Mantissa << (b.Exponent - exponent));
        return new BigReal(sum, exponent).Normalize();
    }

    public static BigReal operator -(BigReal a, BigReal b) => a + b.Negate();

    public static BigReal operator *(BigReal a, BigReal b) => new BigReal(a.Mantissa * b.Mantissa, a.Exponent + b.Exponent).Normalize();

    public static BigReal operator /(BigReal a, BigReal b)
    {
        int shift = Precision + (int)BigInteger.Abs(b.Mantissa).GetBitLength();
        return new BigReal((a.Mantissa << shift) / b.Mantissa, a.Exponent - b.Exponent - shift).Normalize();
    }

    public static BigReal operator /(BigReal a, int divisor) => a / FromInteger(divisor);

    public BigReal SquareRoot()
    {
        // sqrt(M * 2^E) with E made even and M widened to 2*Precision bits.
        BigInteger mantissa = Mantissa;
        int exponent = Exponent;
        int widen = 2 * Precision - (int)mantissa.GetBitLength();
        if (widen > 0)
        {
            mantissa <<= widen;
            exponent -= widen;
        }

        if ((exponent & 1) != 0)
        {
            mantissa <<= 1;
            exponent--;
        }

        BigInteger x = BigInteger.One << (int)((mantissa.GetBitLength() + 1) / 2);
        while (true)
        {
            BigInteger next = (x + mantissa / x) >> 1;
            if (next >= x)
            {
                break;
            }

            x = next;
        }

        return new BigReal(x, exponent / 2).Normalize();
    }

    /// <summary>True when this term no longer changes a sum of the given magnitude at working precision.</summary>
    public bool NegligibleAgainst(BigReal sum) => IsZero || Magnitude < sum.Magnitude - Precision - 2;

    /// <summary>The value as an exact intermediate for the rounder; Sticky marks it inexact (transcendental results are).</summary>
    public ExactReal ToExactReal()
    {
        ExactReal exact = ExactReal.FromBigInteger(IsNegative, BigInteger.Abs(Mantissa), Exponent);
        return exact with { Sticky = true };
    }

    private BigReal Normalize()
    {
        if (Mantissa.IsZero)
        {
            return Zero;
        }

        BigInteger magnitude = BigInteger.Abs(Mantissa);
        int excess = (int)magnitude.GetBitLength() - Precision;
        if (excess <= 0)
        {
            return this;
        }

        magnitude >>= excess;
        return new BigReal(Mantissa.Sign < 0 ? -magnitude : magnitude, Exponent + excess);
    }
}

using System.Numerics;

namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// A finite intermediate result before rounding: value = Significand * 2^(Exponent - 127), Significand normalized
/// (bit 127 set) or zero; Sticky records non-zero bits below bit 0 (the exact result's tail).
/// </summary>
internal readonly record struct ExactReal(bool Sign, int Exponent, UInt128 Significand, bool Sticky)
{
    public const int TopBit = 127;

    public bool IsZero => Significand == UInt128.Zero && !Sticky;

    /// <summary>Normalizes any significand so bit 127 is set, adjusting the exponent.</summary>
    public static ExactReal Normalized(bool sign, int exponent, UInt128 significand, bool sticky)
    {
        if (significand == UInt128.Zero)
        {
            return new ExactReal(sign, exponent, significand, sticky);
        }

        int shift = (int)UInt128.LeadingZeroCount(significand);
        return new ExactReal(sign, exponent - shift, significand << shift, sticky);
    }

    /// <summary>A finite, non-zero Float80 as an exact real (denormals and pseudo-denormals scale as exponent 1).</summary>
    public static ExactReal FromFloat80(Float80 value)
    {
        int biased = value.BiasedExponent;
        int exponent = (biased == 0 ? 1 : biased) - Float80.ExponentBias;
        return Normalized(value.Sign, exponent, (UInt128)value.Significand << 64, false);
    }

    /// <summary>A BigInteger magnitude times 2^scale, keeping the top 128 bits exactly and the rest as sticky.</summary>
    public static ExactReal FromBigInteger(bool sign, BigInteger magnitude, int scale)
    {
        long bits = (long)magnitude.GetBitLength();
        if (bits <= 128)
        {
            return Normalized(sign, scale + 127, (UInt128)magnitude, false);
        }

        int drop = (int)(bits - 128);
        BigInteger top = magnitude >> drop;
        bool sticky = !(top << drop).Equals(magnitude);
        return new ExactReal(sign, scale + drop + 127, (UInt128)top, sticky);
    }
}

/// <summary>A rounding target: significand precision and exponent range (SDM vol. 1, table 4-3; 8.1.5.2 for PC).</summary>
internal readonly record struct FloatFormat(int Precision, int MinExponent, int MaxExponent)
{
    public static readonly FloatFormat Single = new(24, -126, 127);
    public static readonly FloatFormat Double = new(53, -1022, 1023);
    public static readonly FloatFormat Extended = new(64, Float80.MinExponent, Float80.MaxExponent);

    /// <summary>The x87 register format under precision control: PC narrows the significand, never the exponent range.</summary>
    public static FloatFormat ExtendedWithPrecision(int precision) => new(precision, Float80.MinExponent, Float80.MaxExponent);

    /// <summary>An unbounded exponent range (for the bias-adjusted results of unmasked OE/UE, SDM vol. 1, 4.9.1.4-5).</summary>
    public FloatFormat Unbounded => this with { MinExponent = int.MinValue / 4, MaxExponent = int.MaxValue / 4 };
}

/// <summary>A rounded finite or infinite result: value = Significand * 2^(Exponent - 63), Significand normalized or zero.</summary>
internal readonly record struct RoundedReal(bool Sign, int Exponent, ulong Significand, bool IsInfinity,
    bool Inexact, bool RoundedUp, bool Tiny, bool Overflowed)
{
    public bool IsZero => Significand == 0 && !IsInfinity;

    /// <summary>Underflow as signalled when masked: tiny and inexact (SDM vol. 1, 4.9.1.5).</summary>
    public bool MaskedUnderflow => Tiny && Inexact;
}

namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// Exact widening of single and double values to extended, and the packing of rounded results into the single,
/// double and extended encodings (SDM vol. 1, 4.2.2, table 4-3).
/// </summary>
internal static class FloatEncoding
{
    private const int SingleFractionBits = 23;
    private const int SingleBias = 127;
    private const uint SingleExponentMask = 0xFF;
    private const uint SingleSign = 1U << 31;
    private const uint SingleQuietBit = 1U << (SingleFractionBits - 1);
    private const int DoubleFractionBits = 52;
    private const int DoubleBias = 1023;
    private const ulong DoubleExponentMask = 0x7FF;
    private const ulong DoubleSign = 1UL << 63;
    private const ulong DoubleQuietBit = 1UL << (DoubleFractionBits - 1);

    /// <summary>Single to extended: exact; a NaN keeps its payload (and its signaling state for the caller to judge).</summary>
    public static Float80 FromSingle(uint bits, out bool denormal) =>
        Widen((bits & SingleSign) != 0, (int)((bits >> SingleFractionBits) & SingleExponentMask), bits & ((1U << SingleFractionBits) - 1),
            SingleFractionBits, SingleBias, (int)SingleExponentMask, out denormal);

    public static Float80 FromDouble(ulong bits, out bool denormal) =>
        Widen((bits & DoubleSign) != 0, (int)((bits >> DoubleFractionBits) & DoubleExponentMask), bits & ((1UL << DoubleFractionBits) - 1),
            DoubleFractionBits, DoubleBias, (int)DoubleExponentMask, out denormal);

    public static Float80 FromInteger(long value)
    {
        if (value == 0)
        {
            return Float80.PositiveZero;
        }

        bool negative = value < 0;
        ulong magnitude = negative ? (ulong)-(value + 1) + 1 : (ulong)value;
        int shift = System.Numerics.BitOperations.LeadingZeroCount(magnitude);
        int exponent = 63 - shift + Float80.ExponentBias;
        return new Float80((ushort)(exponent | (negative ? Float80.SignBit : 0)), magnitude << shift);
    }

    public static Float80 ToExtended(in RoundedReal value)
    {
        ushort sign = value.Sign ? Float80.SignBit : (ushort)0;
        if (value.IsInfinity)
        {
            return new Float80((ushort)(sign | Float80.MaxBiasedExponent), Float80.IntegerBit);
        }

        if (value.IsZero)
        {
            return new Float80(sign, 0);
        }

        if (value.Exponent < Float80.MinExponent)
        {
            // Denormal: the rounder already made every dropped bit zero.
            int shift = Float80.MinExponent - value.Exponent;
            return new Float80(sign, shift >= 64 ? 0 : value.Significand >> shift);
        }

        return new Float80((ushort)(sign | (value.Exponent + Float80.ExponentBias)), value.Significand);
    }

    public static uint ToSingle(in RoundedReal value)
    {
        uint sign = value.Sign ? SingleSign : 0;
        if (value.IsInfinity)
        {
            return sign | (SingleExponentMask << SingleFractionBits);
        }

        if (value.IsZero)
        {
            return sign;
        }

        uint mantissa = (uint)(value.Significand >> (64 - SingleFractionBits - 1));
        if (value.Exponent < FloatFormat.Single.MinExponent)
        {
            return sign | (mantissa >> (FloatFormat.Single.MinExponent - value.Exponent));
        }

        return sign | ((uint)(value.Exponent + SingleBias) << SingleFractionBits) | (mantissa & ((1U << SingleFractionBits) - 1));
    }

    public static ulong ToDouble(in RoundedReal value)
    {
        ulong sign = value.Sign ? DoubleSign : 0;
        if (value.IsInfinity)
        {
            return sign | (DoubleExponentMask << DoubleFractionBits);
        }

        if (value.IsZero)
        {
            return sign;
        }

        ulong mantissa = value.Significand >> (64 - DoubleFractionBits - 1);
        if (value.Exponent < FloatFormat.Double.MinExponent)
        {
            return sign | (mantissa >> (FloatFormat.Double.MinExponent - value.Exponent));
        }

        return sign | ((ulong)(value.Exponent + DoubleBias) << DoubleFractionBits) | (mantissa & ((1UL << DoubleFractionBits) - 1));
    }

    /// <summary>A NaN narrowed to single: quieted, payload truncated (SDM vol. 1, 4.8.3.4 and table 4-7).</summary>
    public static uint NaNToSingle(Float80 value) =>
        (value.Sign ? SingleSign : 0) | (SingleExponentMask << SingleFractionBits) | SingleQuietBit
        | (uint)((value.Significand & ~Float80.IntegerBit) >> (63 - SingleFractionBits));

    public static ulong NaNToDouble(Float80 value) =>
        (value.Sign ? DoubleSign : 0) | (DoubleExponentMask << DoubleFractionBits) | DoubleQuietBit
        | ((value.Significand & ~Float80.IntegerBit) >> (63 - DoubleFractionBits));

    private static Float80 Widen(bool negative, int exponent, ulong fraction, int fractionBits, int bias, int maxExponent, out bool denormal)
    {
        ushort sign = negative ? Float80.SignBit : (ushort)0;
        denormal = false;
        int align = 63 - fractionBits;
        if (exponent == maxExponent)
        {
            return new Float80((ushort)(sign | Float80.MaxBiasedExponent), Float80.IntegerBit | (fraction << align));
        }

        if (exponent == 0)
        {
            if (fraction == 0)
            {
                return new Float80(sign, 0);
            }

            // A denormal of the narrow format is a normal extended value (and a denormal operand, #D).
            denormal = true;
            int shift = System.Numerics.BitOperations.LeadingZeroCount(fraction);
            int unbiased = 1 - bias - (shift - (63 - fractionBits));
            return new Float80((ushort)(sign | (unbiased + Float80.ExponentBias)), fraction << shift);
        }

        return new Float80((ushort)(sign | (exponent - bias + Float80.ExponentBias)), Float80.IntegerBit | (fraction << align));
    }
}

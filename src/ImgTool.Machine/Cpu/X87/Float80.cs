using System.Buffers.Binary;

namespace ImgTool.Machine.Cpu.X87;

/// <summary>The x87 operand classes of a double extended-precision value (SDM vol. 1, 8.2.2, table 8-3).</summary>
internal enum Float80Class
{
    Zero,
    /// <summary>Exponent 0, integer bit 0 or 1 (a pseudo-denormal is a valid denormal operand on a 387+).</summary>
    Denormal,
    Normal,
    Infinity,
    QuietNaN,
    SignalingNaN,
    /// <summary>Unnormal, pseudo-NaN, pseudo-infinity: invalid operands since the 387 (SDM vol. 1, 8.2.2).</summary>
    Unsupported,
}

/// <summary>
/// An 80-bit double extended-precision value, bit for bit: sign, 15-bit biased exponent, 64-bit significand with an
/// explicit integer bit (SDM vol. 1, 4.2.2, figure 4-3).
/// </summary>
internal readonly record struct Float80(ushort SignExponent, ulong Significand)
{
    public const int SizeBytes = 10;
    public const int ExponentBias = 16383;
    public const int MaxBiasedExponent = 0x7FFF;
    /// <summary>The unbiased exponent of the smallest normal (and of every denormal's value scale).</summary>
    public const int MinExponent = 1 - ExponentBias;
    public const int MaxExponent = MaxBiasedExponent - 1 - ExponentBias;
    public const ulong IntegerBit = 1UL << 63;
    /// <summary>The most significant fraction bit: set in a quiet NaN.</summary>
    public const ulong QuietBit = 1UL << 62;
    public const ushort SignBit = 0x8000;
    public const ushort ExponentMask = 0x7FFF;

    public static readonly Float80 PositiveZero = new(0, 0);
    public static readonly Float80 NegativeZero = new(SignBit, 0);
    public static readonly Float80 One = new(ExponentBias, IntegerBit);
    public static readonly Float80 PositiveInfinity = new(MaxBiasedExponent, IntegerBit);
    public static readonly Float80 NegativeInfinity = new(SignBit | MaxBiasedExponent, IntegerBit);

    /// <summary>The real indefinite: the masked response to an invalid operation (SDM vol. 1, 4.8.3.7).</summary>
    public static readonly Float80 Indefinite = new(SignBit | MaxBiasedExponent, IntegerBit | QuietBit);

    public bool Sign => (SignExponent & SignBit) != 0;

    public int BiasedExponent => SignExponent & ExponentMask;

    public Float80Class Class
    {
        get
        {
            int exponent = BiasedExponent;
            bool integer = (Significand & IntegerBit) != 0;
            if (exponent == 0)
            {
                return Significand == 0 ? Float80Class.Zero : Float80Class.Denormal;
            }

            if (!integer)
            {
                return Float80Class.Unsupported;
            }

            if (exponent == MaxBiasedExponent)
            {
                ulong fraction = Significand & ~IntegerBit;
                if (fraction == 0)
                {
                    return Float80Class.Infinity;
                }

                return (fraction & QuietBit) != 0 ? Float80Class.QuietNaN : Float80Class.SignalingNaN;
            }

            return Float80Class.Normal;
        }
    }

    public bool IsNaN => Class is Float80Class.QuietNaN or Float80Class.SignalingNaN;

    public Float80 Negate() => new((ushort)(SignExponent ^ SignBit), Significand);

    public Float80 Abs() => new((ushort)(SignExponent & ExponentMask), Significand);

    public Float80 WithSign(bool negative) => new((ushort)((SignExponent & ExponentMask) | (negative ? SignBit : 0)), Significand);

    /// <summary>A NaN made quiet (the SNaN-to-QNaN conversion of SDM vol. 1, 4.8.3.4).</summary>
    public Float80 Quieted() => new(SignExponent, Significand | QuietBit);

    public static Float80 Infinity(bool negative) => negative ? NegativeInfinity : PositiveInfinity;

    public static Float80 Zero(bool negative) => negative ? NegativeZero : PositiveZero;

    public static Float80 Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadUInt16LittleEndian(source[sizeof(ulong)..]), BinaryPrimitives.ReadUInt64LittleEndian(source));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, Significand);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[sizeof(ulong)..], SignExponent);
    }

    public override string ToString() => $"{SignExponent:X4}:{Significand:X16}";
}

namespace ImgTool.Machine.Cpu.X87;

/// <summary>The result of rounding a finite value to an integer magnitude (FIST, FBSTP, FRNDINT).</summary>
internal readonly record struct RoundedInteger(bool Sign, UInt128 Magnitude, bool Inexact, bool RoundedUp, bool TooLarge);

/// <summary>
/// Float80 to and from integers and 18-digit packed BCD (SDM vol. 1, 4.2.1 and 4.7; vol. 2 FIST, FBLD, FBSTP).
/// </summary>
internal static class IntegerConversion
{
    /// <summary>Packed BCD holds 18 digits, two per byte in bytes 0-8; bit 7 of byte 9 is the sign.</summary>
    public const int BcdDigits = 18;
    public const int BcdSignByte = 9;
    public const byte BcdSignBit = 0x80;
    public const ulong BcdMaximum = 999_999_999_999_999_999;
    private const int NibbleBits = 4;
    private const int NibbleMask = (1 << NibbleBits) - 1;
    private const ulong DecimalBase = 10;
    private const ulong DigitsPerByteScale = DecimalBase * DecimalBase;

    /// <summary>The packed BCD indefinite stored by a masked invalid FBSTP (SDM vol. 1, table 4-5): FFFF C000 0000 0000 0000.</summary>
    public static ReadOnlySpan<byte> BcdIndefinite => [0, 0, 0, 0, 0, 0, 0, 0xC0, 0xFF, 0xFF];

    /// <summary>Rounds a finite value to an integer by RC; TooLarge when the magnitude needs more than 127 bits.</summary>
    public static RoundedInteger RoundToInteger(Float80 value, RoundingControl rounding)
    {
        bool sign = value.Sign;
        if (value.Significand == 0)
        {
            return new RoundedInteger(sign, UInt128.Zero, false, false, false);
        }

        int biased = value.BiasedExponent == 0 ? 1 : value.BiasedExponent;
        int exponent = biased - Float80.ExponentBias;
        ulong significand = value.Significand;
        const int FractionBits = 63;
        if (exponent >= FractionBits)
        {
            int left = exponent - FractionBits;
            bool tooLarge = left > 63;
            return new RoundedInteger(sign, tooLarge ? UInt128.Zero : (UInt128)significand << left, false, false, tooLarge);
        }

        int shift = FractionBits - exponent;
        ulong integer;
        bool guard;
        bool rest;
        if (shift > 64)
        {
            integer = 0;
            guard = false;
            rest = true;
        }
        else if (shift == 64)
        {
            integer = 0;
            guard = (significand >> 63) != 0;
            rest = (significand << 1) != 0;
        }
        else
        {
            integer = significand >> shift;
            guard = ((significand >> (shift - 1)) & 1) != 0;
            rest = (significand & ((1UL << (shift - 1)) - 1)) != 0;
        }

        bool inexact = guard || rest;
        bool increment = rounding switch
        {
            RoundingControl.Nearest => guard && (rest || (integer & 1) != 0),
            RoundingControl.Up => inexact && !sign,
            RoundingControl.Down => inexact && sign,
            _ => false,
        };
        UInt128 magnitude = (UInt128)integer + (increment ? UInt128.One : UInt128.Zero);
        return new RoundedInteger(sign, magnitude, inexact, increment, false);
    }

    /// <summary>True when the rounded integer fits a two's-complement integer of the given width.</summary>
    public static bool Fits(in RoundedInteger value, int bits)
    {
        if (value.TooLarge)
        {
            return false;
        }

        UInt128 limit = UInt128.One << (bits - 1);
        return value.Sign ? value.Magnitude <= limit : value.Magnitude < limit;
    }

    public static long ToSigned(in RoundedInteger value) =>
        value.Sign ? (long)(0UL - (ulong)value.Magnitude) : (long)(ulong)value.Magnitude;

    public static Float80 FromBcd(ReadOnlySpan<byte> source)
    {
        ulong value = 0;
        for (int index = BcdDigits / 2 - 1; index >= 0; index--)
        {
            // Invalid digits (A-F) are undefined on hardware; they are taken at face value here.
            value = (value * DigitsPerByteScale) + ((ulong)(source[index] >> NibbleBits) * DecimalBase) + (ulong)(source[index] & NibbleMask);
        }

        bool negative = (source[BcdSignByte] & BcdSignBit) != 0;
        Float80 magnitude = FloatEncoding.FromInteger((long)value);
        return magnitude.WithSign(negative);
    }

    public static void ToBcd(bool negative, ulong magnitude, Span<byte> destination)
    {
        for (int index = 0; index < BcdDigits / 2; index++)
        {
            ulong low = magnitude % DecimalBase;
            magnitude /= DecimalBase;
            ulong high = magnitude % DecimalBase;
            magnitude /= DecimalBase;
            destination[index] = (byte)((high << NibbleBits) | low);
        }

        destination[BcdSignByte] = negative ? BcdSignBit : (byte)0;
    }
}

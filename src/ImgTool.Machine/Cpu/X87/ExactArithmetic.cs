using System.Numerics;

namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// Exact (or exact-with-sticky) sums, products, quotients and square roots of finite non-zero operands, for the
/// <see cref="Rounder"/> to round once (IEEE 754 section 5.4.1: each operation is correctly rounded).
/// </summary>
internal static class ExactArithmetic
{
    /// <summary>a + b for finite operands (either may be zero); an exact zero sum is left to the caller's sign rule.</summary>
    public static ExactReal Add(in ExactReal a, in ExactReal b)
    {
        if (a.Significand == UInt128.Zero)
        {
            return b;
        }

        if (b.Significand == UInt128.Zero)
        {
            return a;
        }

        bool swap = b.Exponent > a.Exponent || (b.Exponent == a.Exponent && b.Significand > a.Significand);
        ExactReal large = swap ? b : a;
        ExactReal small = swap ? a : b;

        // Both significands come from 64-bit values: bits 63..0 are zero, so one bit of headroom is free at the top.
        UInt128 largeBits = large.Significand >> 1;
        int distance = large.Exponent - small.Exponent;
        UInt128 smallBits = small.Significand >> 1;
        bool sticky = false;
        if (distance >= 127)
        {
            sticky = smallBits != UInt128.Zero;
            smallBits = UInt128.Zero;
        }
        else if (distance > 0)
        {
            sticky = (smallBits & ((UInt128.One << distance) - UInt128.One)) != UInt128.Zero;
            smallBits >>= distance;
        }

        // Jamming the lost bits into bit 0 keeps subtraction exact enough: 62 guard bits lie above it.
        if (sticky)
        {
            smallBits |= UInt128.One;
        }

        UInt128 sum = large.Sign == small.Sign ? largeBits + smallBits : largeBits - smallBits;
        return ExactReal.Normalized(large.Sign, large.Exponent + 1, sum, false);
    }

    public static ExactReal Multiply(in ExactReal a, in ExactReal b)
    {
        ulong x = (ulong)(a.Significand >> 64);
        ulong y = (ulong)(b.Significand >> 64);
        UInt128 product = (UInt128)x * y;
        // value = x*2^(ea-63) * y*2^(eb-63) = product * 2^(ea+eb-126).
        return ExactReal.Normalized(a.Sign ^ b.Sign, a.Exponent + b.Exponent + 1, product, false);
    }

    public static ExactReal Divide(in ExactReal a, in ExactReal b)
    {
        ulong x = (ulong)(a.Significand >> 64);
        ulong y = (ulong)(b.Significand >> 64);
        UInt128 dividend = x;
        int exponent = a.Exponent - b.Exponent;
        if (x < y)
        {
            dividend <<= 1;
            exponent--;
        }

        // Long division in two 64-bit steps: 128 quotient bits and a sticky remainder.
        UInt128 numerator = dividend << 63;
        UInt128 high = numerator / y;
        UInt128 remainder = numerator % y;
        UInt128 low = (remainder << 64) / y;
        bool sticky = (remainder << 64) % y != UInt128.Zero;
        return new ExactReal(a.Sign ^ b.Sign, exponent, (high << 64) | low, sticky);
    }

    /// <summary>The square root of a positive finite value.</summary>
    public static ExactReal SquareRoot(in ExactReal a)
    {
        ulong x = (ulong)(a.Significand >> 64);
        // value = x * 2^k with k = e - 63; make k even.
        int k = a.Exponent - 63;
        BigInteger radicand = x;
        if ((k & 1) != 0)
        {
            radicand <<= 1;
            k--;
        }

        const int ExtraBits = 130;
        radicand <<= ExtraBits;
        BigInteger root = IntegerSquareRoot(radicand);
        bool sticky = !(root * root).Equals(radicand);
        ExactReal result = ExactReal.FromBigInteger(false, root, (k - ExtraBits) / 2);
        return result with { Sticky = result.Sticky || sticky };
    }

    private static BigInteger IntegerSquareRoot(BigInteger n)
    {
        // Newton's iteration from above converges monotonically to floor(sqrt(n)).
        long bits = (long)n.GetBitLength();
        BigInteger x = BigInteger.One << (int)((bits + 1) / 2);
        while (true)
        {
            BigInteger next = (x + n / x) >> 1;
            if (next >= x)
            {
                return x;
            }

            x = next;
        }
    }
}

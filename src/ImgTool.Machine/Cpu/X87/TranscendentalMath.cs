using System.Numerics;

namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// The elementary functions at <see cref="BigReal.Precision"/> bits: series after argument reduction, each error far
/// below the final rounding to 64 bits. Argument reduction for FSIN/FCOS/FPTAN uses the x87's own 66-bit pi
/// (SDM vol. 1, 8.3.10: "the FPU's internal value of pi ... 66 significant bits"), as the hardware does.
/// </summary>
internal static class TranscendentalMath
{
    /// <summary>pi to 66 bits, as the x87 reduces with it: 0xC90FDAA22168C234C * 2^-66 (the last hex digit holds 2 bits).</summary>
    private static readonly BigInteger HardwarePi = BigInteger.Parse("0C90FDAA22168C234C", System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
    private const int HardwarePiScale = 66;
    private const int ExpHalvings = 8;
    private const int AtanHalvings = 3;

    public static readonly BigReal Pi = ComputePi();
    public static readonly BigReal LnTwo = ComputeLnTwo();

    /// <summary>e^t - 1, accurate relative to the result also for tiny t.</summary>
    public static BigReal ExpMinusOne(BigReal t)
    {
        // expm1(2u) = expm1(u) * (expm1(u) + 2): halve first, square back.
        BigReal u = t.Scale(-ExpHalvings);
        BigReal term = u;
        BigReal sum = u;
        for (int n = 2; !term.NegligibleAgainst(sum); n++)
        {
            term = term * u / n;
            sum += term;
        }

        BigReal two = BigReal.FromInteger(2);
        for (int step = 0; step < ExpHalvings; step++)
        {
            sum *= sum + two;
        }

        return sum;
    }

    /// <summary>ln(1 + x) for x &gt; -1: 2 atanh(x / (2 + x)).</summary>
    public static BigReal LnOnePlus(BigReal x)
    {
        BigReal s = x / (x + BigReal.FromInteger(2));
        BigReal square = s * s;
        BigReal power = s;
        BigReal sum = s;
        for (int n = 3; ; n += 2)
        {
            power *= square;
            BigReal term = power / n;
            if (term.NegligibleAgainst(sum))
            {
                break;
            }

            sum += term;
        }

        return sum.Scale(1);
    }

    /// <summary>log2(x) for x &gt; 0: e + ln(m)/ln 2 with m in [sqrt(1/2), sqrt(2)).</summary>
    public static BigReal LogTwo(BigReal x)
    {
        int exponent = x.Magnitude;
        BigReal m = x.Scale(-exponent);
        // sqrt(2) ~ 1.4142: above it, use m/2 and one more in the exponent.
        if (m.Mantissa * 10000 > new BigInteger(14142) << -m.Exponent)
        {
            m = m.Scale(-1);
            exponent++;
        }

        BigReal fraction = LnOnePlus(m - BigReal.One) / LnTwo;
        return BigReal.FromInteger(exponent) + fraction;
    }

    /// <summary>atan(z) for any finite z.</summary>
    public static BigReal Atan(BigReal z)
    {
        if (z.IsZero)
        {
            return z;
        }

        if (z.Magnitude >= 0 && z.Abs().Mantissa > (BigInteger.One << -z.Exponent))
        {
            // |z| > 1: atan(z) = ±pi/2 - atan(1/z).
            BigReal halfPi = Pi.Scale(-1);
            return (z.IsNegative ? halfPi.Negate() : halfPi) - Atan(BigReal.One / z);
        }

        // atan(z) = 2 atan(z / (1 + sqrt(1 + z^2))), three times, then the series.
        for (int step = 0; step < AtanHalvings; step++)
        {
            z /= BigReal.One + (BigReal.One + z * z).SquareRoot();
        }

        BigReal square = z * z;
        BigReal power = z;
        BigReal sum = z;
        for (int n = 3; ; n += 2)
        {
            power = (power * square).Negate();
            BigReal term = power / n;
            if (term.NegligibleAgainst(sum))
            {
                break;
            }

            sum += term;
        }

        return sum.Scale(AtanHalvings);
    }

    /// <summary>atan2(y, x) for finite non-zero y and x, in (-pi, pi].</summary>
    public static BigReal Atan2(BigReal y, BigReal x)
    {
        if (y.Abs().Magnitude <= x.Abs().Magnitude && Compare(y.Abs(), x.Abs()) <= 0)
        {
            BigReal angle = Atan(y / x);
            if (x.IsNegative)
            {
                angle += y.IsNegative ? Pi.Negate() : Pi;
            }

            return angle;
        }

        BigReal halfPi = Pi.Scale(-1);
        return (y.IsNegative ? halfPi.Negate() : halfPi) - Atan(x / y);
    }

    /// <summary>Reduces x by the hardware's pi/2: x = q * pi66/2 + r, |r| &lt;= pi66/4; exact (x has 64 bits).</summary>
    public static (BigReal Reduced, int Quadrant) Reduce(Float80 value)
    {
        BigReal x = BigReal.FromFloat80(value);
        // |x| < 0.75 < pi/4 needs no reduction (and keeps the full relative precision of a tiny x).
        if (x.Magnitude < -1 || (x.Magnitude == -1 && x.Abs().Mantissa * 4 < new BigInteger(3) << -x.Exponent))
        {
            return (x, 0);
        }

        // x = X * 2^-(HardwarePiScale + 1) exactly (its exponent is at least -64 here).
        BigInteger scaled = x.Mantissa << (x.Exponent + HardwarePiScale + 1);
        BigInteger quotient = BigInteger.DivRem(scaled, HardwarePi, out BigInteger remainder);
        // Round the quotient to nearest: the remainder then lies in [-pi/4, pi/4].
        if (BigInteger.Abs(remainder) * 2 > HardwarePi)
        {
            int direction = remainder.Sign;
            quotient += direction;
            remainder -= direction * HardwarePi;
        }

        int quadrant = (int)(quotient & 3);
        return (new BigReal(remainder, -(HardwarePiScale + 1)), quadrant);
    }

    public static BigReal Sine(BigReal r)
    {
        BigReal square = r * r;
        BigReal term = r;
        BigReal sum = r;
        for (int n = 2; ; n += 2)
        {
            term = (term * square / (n * (n + 1))).Negate();
            if (term.NegligibleAgainst(sum))
            {
                return sum;
            }

            sum += term;
        }
    }

    public static BigReal Cosine(BigReal r)
    {
        BigReal square = r * r;
        BigReal term = BigReal.One;
        BigReal sum = BigReal.One;
        for (int n = 1; ; n += 2)
        {
            term = (term * square / (n * (n + 1))).Negate();
            if (term.NegligibleAgainst(sum))
            {
                return sum;
            }

            sum += term;
        }
    }

    private static int Compare(BigReal a, BigReal b) => (a - b) is { IsZero: true } ? 0 : (a - b).IsNegative ? -1 : 1;

    private static BigReal ComputePi()
    {
        // Machin: pi = 16 atan(1/5) - 4 atan(1/239), each by its alternating series.
        return AtanOfReciprocal(5).Scale(4) - AtanOfReciprocal(239).Scale(2);
    }

    private static BigReal AtanOfReciprocal(int n)
    {
        BigReal x = BigReal.One / n;
        BigReal square = x * x;
        BigReal power = x;
        BigReal sum = x;
        for (int k = 3; ; k += 2)
        {
            power = (power * square).Negate();
            BigReal term = power / k;
            if (term.NegligibleAgainst(sum))
            {
                return sum;
            }

            sum += term;
        }
    }

    private static BigReal ComputeLnTwo()
    {
        // ln 2 = 2 atanh(1/3) = 2 * sum (1/3)^(2k+1) / (2k+1).
        BigReal x = BigReal.One / 3;
        BigReal square = x * x;
        BigReal power = x;
        BigReal sum = x;
        for (int k = 3; ; k += 2)
        {
            power *= square;
            BigReal term = power / k;
            if (term.NegligibleAgainst(sum))
            {
                return sum.Scale(1);
            }

            sum += term;
        }
    }
}

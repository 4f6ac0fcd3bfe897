using ImgTool.Machine.Cpu.X87;

namespace ImgTool.Machine.Tests.Cpu.X87;

/// <summary>The working-precision functions against System.Math at double precision (a sanity layer under the differential test).</summary>
public sealed class TranscendentalMathTests
{
    private static double ToDouble(BigReal value) => (double)value.Mantissa * Math.Pow(2, value.Exponent);

    private static BigReal From(double value)
    {
        long bits = BitConverter.DoubleToInt64Bits(value);
        Float80 extended = FloatEncoding.FromDouble((ulong)bits, out _);
        return BigReal.FromFloat80(extended);
    }

    [Fact]
    public void ConstantsMatchTheirKnownValues()
    {
        Assert.Equal(Math.PI, ToDouble(TranscendentalMath.Pi), 15);
        Assert.Equal(Math.Log(2), ToDouble(TranscendentalMath.LnTwo), 15);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(-0.75)]
    [InlineData(1e-10)]
    [InlineData(0.693)]
    public void ExpMinusOneMatches(double t) =>
        Assert.Equal(Math.Exp(t) - 1, ToDouble(TranscendentalMath.ExpMinusOne(From(t))), 1e-15 * Math.Max(1, Math.Abs(t)));

    [Theory]
    [InlineData(0.25)]
    [InlineData(-0.25)]
    [InlineData(3.0)]
    [InlineData(1e-12)]
    public void LnOnePlusMatches(double x)
    {
        // Math.Log(1 + x) loses a tiny x; its series is exact enough there.
        double expected = Math.Abs(x) < 1e-6 ? x - x * x / 2 : Math.Log(1 + x);
        Assert.Equal(expected, ToDouble(TranscendentalMath.LnOnePlus(From(x))), 1e-15 * Math.Abs(expected));
    }

    [Theory]
    [InlineData(10.0)]
    [InlineData(0.3)]
    [InlineData(1.5)]
    public void LogTwoMatches(double x) => Assert.Equal(Math.Log2(x), ToDouble(TranscendentalMath.LogTwo(From(x))), 14);

    [Theory]
    [InlineData(0.5, 1.0)]
    [InlineData(-2.0, -3.0)]
    [InlineData(5.0, -0.1)]
    public void Atan2Matches(double y, double x) => Assert.Equal(Math.Atan2(y, x), ToDouble(TranscendentalMath.Atan2(From(y), From(x))), 14);

    [Theory]
    [InlineData(0.5)]
    [InlineData(2.0)]
    [InlineData(-100.0)]
    public void SineAndCosineAfterReductionMatch(double x)
    {
        (BigReal r, int quadrant) = TranscendentalMath.Reduce(FloatEncoding.FromDouble((ulong)BitConverter.DoubleToInt64Bits(x), out _));
        double s = ToDouble(TranscendentalMath.Sine(r));
        double c = ToDouble(TranscendentalMath.Cosine(r));
        double sine = quadrant switch { 0 => s, 1 => c, 2 => -s, _ => -c };
        Assert.Equal(Math.Sin(x), sine, 12);
    }
}

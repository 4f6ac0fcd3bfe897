namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// The FLDxx constants with 128 bits of their exact values (computed with Python's decimal module at 100 digits),
/// rounded by RC when loaded (SDM vol. 1, 8.3.8: the constants are held with more than 64 bits and rounded by RC).
/// </summary>
internal static class X87Constants
{
    public static ExactReal Get(X87Constant constant) => constant switch
    {
        X87Constant.One => new ExactReal(false, 0, UInt128.One << ExactReal.TopBit, false),
        X87Constant.Log2Ten => Irrational(1, 0xD49A784BCD1B8AFE, 0x492BF6FF4DAFDB4C),
        X87Constant.Log2E => Irrational(0, 0xB8AA3B295C17F0BB, 0xBE87FED0691D3E88),
        X87Constant.Pi => Irrational(1, 0xC90FDAA22168C234, 0xC4C6628B80DC1CD1),
        X87Constant.Log10Two => Irrational(-2, 0x9A209A84FBCFF798, 0x8F8959AC0B7C9178),
        X87Constant.LnTwo => Irrational(-1, 0xB17217F7D1CF79AB, 0xC9E3B39803F2F6AF),
        _ => default,
    };

    /// <summary>pi/2, pi/4 and 2pi are Pi with another exponent; used by the transcendentals.</summary>
    public static ExactReal Pi => Get(X87Constant.Pi);

    private static ExactReal Irrational(int exponent, ulong high, ulong low) =>
        new(false, exponent, new UInt128(high, low), true);
}

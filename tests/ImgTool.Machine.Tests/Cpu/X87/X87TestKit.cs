using System.Globalization;
using Iced.Intel;
using ImgTool.Machine.Cpu.X87;

namespace ImgTool.Machine.Tests.Cpu.X87;

/// <summary>Decoding and running x87 instruction bytes through <see cref="X87Fpu"/>, as the CPU engine will.</summary>
internal static class X87TestKit
{
    public static readonly X87Context Protected32 = new(true, true, 0x0008, 0x1000, 0x0010, 0x2000);

    public static X87Instruction Lower(params byte[] bytes) => Lower(bytes, 32);

    public static X87Instruction Lower(byte[] bytes, int bitness)
    {
        var decoder = Decoder.Create(bitness, new ByteArrayCodeReader(bytes));
        decoder.Decode(out Instruction instruction);
        Assert.True(X87Instruction.TryLower(instruction, out X87Instruction lowered), $"not lowered: {instruction}");
        return lowered;
    }

    /// <summary>Every instruction in the bytes, in order.</summary>
    public static List<X87Instruction> LowerAll(byte[] bytes)
    {
        var decoder = Decoder.Create(32, new ByteArrayCodeReader(bytes));
        var lowered = new List<X87Instruction>();
        while (decoder.IP < (ulong)bytes.Length)
        {
            decoder.Decode(out Instruction instruction);
            Assert.True(X87Instruction.TryLower(instruction, out X87Instruction one), $"not lowered: {instruction}");
            lowered.Add(one);
        }

        return lowered;
    }

    public static X87Outcome Run(X87Fpu fpu, FakeFpuHost host, params byte[] bytes) =>
        fpu.Execute(Lower(bytes), host, Protected32);

    public static X87Outcome Run(X87Fpu fpu, FakeFpuHost host, in X87Context context, params byte[] bytes) =>
        fpu.Execute(Lower(bytes), host, context);

    public static void LoadExtended(X87Fpu fpu, FakeFpuHost host, Float80 value)
    {
        value.Write(host.Memory);
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0xDB, 0x28));
    }

    public static void LoadControlWord(X87Fpu fpu, FakeFpuHost host, ushort controlWord)
    {
        host.Memory[0] = (byte)controlWord;
        host.Memory[1] = (byte)(controlWord >> 8);
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0xD9, 0x28));
    }

    /// <summary>"SSSS:MMMMMMMMMMMMMMMM" (sign/exponent, significand).</summary>
    public static Float80 Parse(string text)
    {
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        return new Float80(ushort.Parse(text.AsSpan(0, colon), NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            ulong.Parse(text.AsSpan(colon + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
    }

    public static Float80 F(ushort signExponent, ulong significand) => new(signExponent, significand);
}

using System.Buffers.Binary;
using ImgTool.Machine.Cpu.X87;
using static ImgTool.Machine.Tests.Cpu.X87.X87TestKit;

namespace ImgTool.Machine.Tests.Cpu.X87;

/// <summary>FSTENV/FSAVE/FXSAVE images byte for byte (SDM vol. 1, figures 8-9 to 8-12; table 10-2) and their restores.</summary>
public sealed class X87EnvironmentTests
{
    private static readonly X87Context Real16 = new(false, false, 0x1234, 0x0010, 0x2000, 0x0100);
    private static readonly X87Context Protected16 = new(true, false, 0x0008, 0x0010, 0x0010, 0x0100);
    private static readonly X87Context Real32 = new(false, true, 0x1234, 0x5678, 0x2000, 0x0100);

    private readonly X87Fpu fpu = new();
    private readonly FakeFpuHost host = new();

    /// <summary>CW 0x0272, ST0 = pi (FLDPI at 0x0008:0x00401000), ST1 = 1.5 loaded from 0x0010:0x00403000, and the flag PE.</summary>
    private void Prepare()
    {
        LoadControlWord(fpu, host, 0x0272);
        host.Memory[0] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(host.Memory, 0x3FC00000); // 1.5f
        fpu.Execute(Lower(0xD9, 0x00), host, new X87Context(true, true, 0x0008, 0x00400F00, 0x0010, 0x00403000));
        fpu.Execute(Lower(0xD9, 0xEB), host, new X87Context(true, true, 0x0008, 0x00401000, 0x0010, 0x00405000));
        host.Memory.AsSpan().Clear();
    }

    [Fact]
    public void Fsave32ProtectedIsByteExactAndReinitializes()
    {
        Prepare();
        ushort status = fpu.StatusWord;
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0xDD, 0x30)); // FNSAVE (32-bit protected context)
        byte[] image = host.Memory[..X87Fpu.Save32Bytes];
        Assert.Equal(0xFFFF0272u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(0)));
        Assert.Equal(0xFFFF0000u | status, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(4)));
        // TOP = 6: ST0 (physical 6) valid, ST1 (physical 7) valid, the rest empty.
        Assert.Equal(0xFFFF0FFFu, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(8)));
        Assert.Equal(0x00401000u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(12)));
        Assert.Equal(0x01EB0008u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(16))); // FOP D9 EB, FCS 8
        Assert.Equal(0x00403000u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(20))); // FDP of the last memory operand
        Assert.Equal(0xFFFF0010u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(24)));
        Assert.Equal(F(0x4000, 0xC90FDAA22168C235), Float80.Read(image.AsSpan(28)));
        Assert.Equal(F(0x3FFF, 0xC000000000000000), Float80.Read(image.AsSpan(38)));
        Assert.Equal(0x037F, fpu.ControlWord);
        Assert.Equal(0xFFFF, fpu.TagWord);

        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0xDD, 0x20)); // FRSTOR
        Assert.Equal(0x0272, fpu.ControlWord);
        Assert.Equal(status, fpu.StatusWord);
        Assert.Equal(0x0FFF, fpu.TagWord);
        Assert.Equal(F(0x3FFF, 0xC000000000000000), fpu.ReadStack(1));
        host.Memory.AsSpan(0, 200).Clear();
        Run(fpu, host, 0xDD, 0x30);
        Assert.Equal(image, host.Memory[..X87Fpu.Save32Bytes]);
    }

    [Fact]
    public void Fstenv16RealModeStoresLinearPointersAndMasksExceptions()
    {
        Prepare();
        // Re-run FLDPI in real mode at 1234:0010 so FIP is CS*16 + IP = 0x12350.
        Run(fpu, host, Real16, 0xDD, 0xD8); // FSTP ST(0): a non-control instruction at 1234:0010
        ushort status = fpu.StatusWord;
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, Real16, 0xD9, 0x30)); // FNSTENV m14 (16-bit)
        byte[] image = host.Memory[..X87Fpu.Environment16Bytes];
        Assert.Equal(0x0272, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(0)));
        Assert.Equal(status, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(2)));
        Assert.Equal(0x3FFF, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(4)));
        Assert.Equal(0x2350, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(6)));
        Assert.Equal(0x1000 | 0x05D8, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(8))); // FIP[19:16]=1 at bit 12, FOP DD D8
        // FDP as a linear address from the recorded 0010:00403000: 0x100 + 0x403000, low 16 bits here, bits 19-16 at [12].
        Assert.Equal(0x3100, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(10)));
        Assert.Equal(0x0000, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(12)));
        Assert.Equal(0x0272 | 0x3F, fpu.ControlWord); // all exceptions masked afterwards

        Run(fpu, host, 0x9B, 0xDB, 0xE3); // FINIT
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, Real16, 0xD9, 0x20)); // FLDENV m14
        Assert.Equal(0x0272, fpu.ControlWord);
        Assert.Equal(status, fpu.StatusWord);
        Assert.Equal(0x3FFF, fpu.TagWord);
    }

    [Fact]
    public void Fstenv16ProtectedAndFstenv32RealLayouts()
    {
        Prepare();
        Run(fpu, host, Protected16, 0xD9, 0x30);
        Assert.Equal(0x1000, BinaryPrimitives.ReadUInt16LittleEndian(host.Memory.AsSpan(6))); // FIP offset
        Assert.Equal(0x0008, BinaryPrimitives.ReadUInt16LittleEndian(host.Memory.AsSpan(8))); // FCS
        Assert.Equal(0x3000, BinaryPrimitives.ReadUInt16LittleEndian(host.Memory.AsSpan(10))); // FDP
        Assert.Equal(0x0010, BinaryPrimitives.ReadUInt16LittleEndian(host.Memory.AsSpan(12))); // FDS

        var other = new X87Fpu();
        LoadControlWord(other, host, 0x037F);
        other.Execute(Lower(0xD9, 0xEB), host, Real32);
        host.Memory.AsSpan().Clear();
        Run(other, host, Real32, 0xD9, 0x30); // FNSTENV m28 in real mode
        uint linear = (0x1234u << 4) + 0x5678;
        Assert.Equal(0xFFFF0000u | (linear & 0xFFFF), BinaryPrimitives.ReadUInt32LittleEndian(host.Memory.AsSpan(12)));
        Assert.Equal(0x01EBu | ((linear >> 16) << 12), BinaryPrimitives.ReadUInt32LittleEndian(host.Memory.AsSpan(16)));
    }

    [Fact]
    public void FxsaveLayoutAndRestore()
    {
        Prepare();
        ushort status = fpu.StatusWord;
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0x0F, 0xAE, 0x00)); // FXSAVE [eax]
        byte[] image = host.Memory[..X87Fpu.FxSaveBytes];
        Assert.Equal(0x0272, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(0)));
        Assert.Equal(status, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(2)));
        Assert.Equal(0xC0, image[4]); // abridged: physical 6 and 7 in use
        Assert.Equal(0x1EB, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(6)));
        Assert.Equal(0x00401000u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(8)));
        Assert.Equal(0x0008, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(12)));
        Assert.Equal(0x00403000u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(16)));
        Assert.Equal(0x0010, BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(20)));
        Assert.Equal(0x1F80u, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(24)));
        Assert.Equal(X87Fpu.MxcsrMask, BinaryPrimitives.ReadUInt32LittleEndian(image.AsSpan(28)));
        Assert.Equal(F(0x4000, 0xC90FDAA22168C235), Float80.Read(image.AsSpan(32)));
        Assert.Equal(F(0x3FFF, 0xC000000000000000), Float80.Read(image.AsSpan(48)));

        var restored = new X87Fpu();
        Assert.Equal(X87Outcome.Completed, Run(restored, host, 0x0F, 0xAE, 0x08)); // FXRSTOR [eax]
        Assert.Equal(fpu.ControlWord, restored.ControlWord);
        Assert.Equal(fpu.StatusWord, restored.StatusWord);
        Assert.Equal(fpu.TagWord, restored.TagWord);
        Assert.Equal(fpu.ReadStack(0), restored.ReadStack(0));

        BinaryPrimitives.WriteUInt32LittleEndian(host.Memory.AsSpan(24), 0x00010000); // reserved MXCSR bit
        Assert.Equal(X87Outcome.GeneralProtection, Run(restored, host, 0x0F, 0xAE, 0x08));
    }

    [Fact]
    public void ControlInstructionsLeaveTheInstructionPointerAlone()
    {
        Prepare();
        Run(fpu, host, new X87Context(true, true, 0x0008, 0x00409999, 0x0010, 0x00409999), 0xD9, 0x38); // FNSTCW at another address
        Run(fpu, host, 0xDD, 0x30);
        Assert.Equal(0x00401000u, BinaryPrimitives.ReadUInt32LittleEndian(host.Memory.AsSpan(12)));
    }
}

using System.Buffers.Binary;
using Iced.Intel;
using ImgTool.Machine.Cpu.X87;
using static ImgTool.Machine.Tests.Cpu.X87.X87TestKit;

namespace ImgTool.Machine.Tests.Cpu.X87;

/// <summary>Unit tests of X87Fpu: state, formats, exceptions and the pending-exception protocol.</summary>
public sealed class X87FpuTests
{
    private readonly X87Fpu fpu = new();
    private readonly FakeFpuHost host = new();

    [Fact]
    public void ResetIsTheFinitState()
    {
        Assert.Equal(0x037F, fpu.ControlWord);
        Assert.Equal(0, fpu.StatusWord);
        Assert.Equal(0xFFFF, fpu.TagWord);
        Assert.False(fpu.ErrorPending);
    }

    [Fact]
    public void PowerOnIsTheResetState()
    {
        fpu.PowerOn();
        Assert.Equal(0x0040, fpu.ControlWord);
        Assert.Equal(0x5555, fpu.TagWord);
        Assert.Equal(Float80.PositiveZero, fpu.ReadStack(3));
    }

    [Theory]
    [InlineData(0x3F800000u)] // 1.0
    [InlineData(0x00000001u)] // smallest denormal
    [InlineData(0x80000000u)] // -0
    [InlineData(0x7F800000u)] // +inf
    [InlineData(0xFFC12345u)] // QNaN with payload
    [InlineData(0x7F7FFFFFu)] // largest finite
    public void SingleRoundTrips(uint bits)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(host.Memory, bits);
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0xD9, 0x00)); // FLD m32
        host.Memory.AsSpan(0, 8).Clear();
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0xD9, 0x18)); // FSTP m32
        Assert.Equal(bits, BinaryPrimitives.ReadUInt32LittleEndian(host.Memory));
        Assert.Equal(0xFFFF, fpu.TagWord);
    }

    [Theory]
    [InlineData(0x3FF0000000000000ul)]
    [InlineData(0x000FFFFFFFFFFFFFul)]
    [InlineData(0xFFF0000000000000ul)]
    [InlineData(0x7FF8000000000001ul)]
    [InlineData(0x8000000000000000ul)]
    public void DoubleRoundTrips(ulong bits)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(host.Memory, bits);
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0xDD, 0x00)); // FLD m64
        host.Memory.AsSpan(0, 8).Clear();
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0xDD, 0x18)); // FSTP m64
        Assert.Equal(bits, BinaryPrimitives.ReadUInt64LittleEndian(host.Memory));
    }

    [Theory]
    [InlineData(long.MinValue)]
    [InlineData(long.MaxValue)]
    [InlineData(-1L)]
    [InlineData(0L)]
    [InlineData(123456789012345L)]
    public void Int64RoundTripsExactly(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(host.Memory, value);
        Run(fpu, host, 0xDF, 0x28); // FILD m64
        host.Memory.AsSpan(0, 8).Clear();
        Run(fpu, host, 0xDF, 0x38); // FISTP m64
        Assert.Equal(value, BinaryPrimitives.ReadInt64LittleEndian(host.Memory));
        Assert.Equal(0, fpu.StatusWord & (ushort)X87Exceptions.All);
    }

    [Fact]
    public void BcdRoundTripsAndOverflowStoresTheIndefinite()
    {
        byte[] bcd = [0x21, 0x43, 0x65, 0x87, 0x09, 0x21, 0x43, 0x65, 0x87, 0x80]; // -876543210987654321
        bcd.CopyTo(host.Memory, 0);
        Run(fpu, host, 0xDF, 0x20); // FBLD
        Assert.Equal(FloatEncoding.FromInteger(-876543210987654321), fpu.ReadStack(0));
        host.Memory.AsSpan(0, 10).Clear();
        Run(fpu, host, 0xDF, 0x30); // FBSTP
        Assert.Equal(bcd, host.Memory[..10]);

        LoadExtended(fpu, host, FloatEncoding.FromInteger(long.MaxValue));
        Run(fpu, host, 0xDF, 0x30);
        Assert.Equal(IntegerConversion.BcdIndefinite.ToArray(), host.Memory[..10]);
        Assert.NotEqual(0, fpu.StatusWord & (ushort)X87Exceptions.Invalid);
    }

    [Fact]
    public void IntegerOverflowStoresTheIntegerIndefinite()
    {
        LoadExtended(fpu, host, FloatEncoding.FromInteger(40000));
        Run(fpu, host, 0xDF, 0x18); // FISTP m16
        Assert.Equal(0x8000, BinaryPrimitives.ReadUInt16LittleEndian(host.Memory));
        Assert.Equal((ushort)X87Exceptions.Invalid, fpu.StatusWord & (ushort)X87Exceptions.All);
    }

    [Fact]
    public void StackOverflowPushesTheIndefiniteWithSfAndC1()
    {
        for (int index = 0; index < X87Fpu.RegisterCount; index++)
        {
            Run(fpu, host, 0xD9, 0xE8); // FLD1
        }

        Assert.Equal(0, fpu.StatusWord & (ushort)X87Exceptions.All);
        Run(fpu, host, 0xD9, 0xEE); // FLDZ onto a full stack
        Assert.Equal(Float80.Indefinite, fpu.ReadStack(0));
        Assert.Equal(0x0241, fpu.StatusWord & 0x0241); // C1, SF, IE
    }

    [Fact]
    public void StackUnderflowGivesTheIndefiniteWithC1Clear()
    {
        Run(fpu, host, 0xD9, 0xE8); // FLD1: ST(1) stays empty
        Run(fpu, host, 0xD8, 0xC1); // FADD ST(0), ST(1)
        Assert.Equal(Float80.Indefinite, fpu.ReadStack(0));
        Assert.Equal(0x0041, fpu.StatusWord & 0x0241);
    }

    [Fact]
    public void UnmaskedExceptionFaultsAtTheNextWaitingInstructionOnly()
    {
        LoadControlWord(fpu, host, 0x037B); // ZE unmasked
        Run(fpu, host, 0xD9, 0xE8); // FLD1
        Run(fpu, host, 0xD9, 0xEE); // FLDZ
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0xDE, 0xF9)); // FDIVP: 1/0, ZE recorded, nothing stored
        Assert.True(fpu.ErrorPending);
        Assert.Equal(0x80, fpu.StatusWord & 0x80);
        ushort status = fpu.StatusWord;
        Float80 top = fpu.ReadStack(0);

        Assert.Equal(X87Outcome.MathFault, Run(fpu, host, 0xD8, 0xC1)); // FADD: waiting
        Assert.Equal(X87Outcome.MathFault, Run(fpu, host, 0x9B)); // FWAIT
        Assert.Equal(status, fpu.StatusWord);
        Assert.Equal(top, fpu.ReadStack(0));

        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0xDF, 0xE0)); // FNSTSW AX does not wait
        Assert.Equal(status, host.Ax);
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0xDB, 0xE2)); // FNCLEX
        Assert.False(fpu.ErrorPending);
        Assert.Equal(X87Outcome.Completed, Run(fpu, host, 0x9B));
    }

    [Fact]
    public void UnmaskingAPendingFlagWithFldcwMakesItPending()
    {
        Run(fpu, host, 0xD9, 0xE8);
        Run(fpu, host, 0xD9, 0xEE);
        Run(fpu, host, 0xDE, 0xF9); // masked ZE: flag only
        Assert.False(fpu.ErrorPending);
        LoadControlWord(fpu, host, 0x037B);
        Assert.True(fpu.ErrorPending);
    }

    [Fact]
    public void MemoryFaultsChangeNothing()
    {
        Run(fpu, host, 0xD9, 0xEB); // FLDPI
        ushort status = fpu.StatusWord;
        ushort tags = fpu.TagWord;
        host.Fault = true;
        Assert.Equal(X87Outcome.MemoryFault, Run(fpu, host, 0xD9, 0x00)); // FLD m32
        Assert.Equal(X87Outcome.MemoryFault, Run(fpu, host, 0xDD, 0x18)); // FSTP m64
        Assert.Equal(X87Outcome.MemoryFault, Run(fpu, host, 0xDD, 0x30)); // FNSAVE
        Assert.Equal(status, fpu.StatusWord);
        Assert.Equal(tags, fpu.TagWord);
        Assert.Equal(0x0C90FDAA22168C235UL, fpu.ReadStack(0).Significand);
    }

    [Theory]
    [InlineData(0x037F, 0xC90FDAA22168C235UL)] // nearest
    [InlineData(0x077F, 0xC90FDAA22168C234UL)] // down
    [InlineData(0x0B7F, 0xC90FDAA22168C235UL)] // up
    [InlineData(0x0F7F, 0xC90FDAA22168C234UL)] // toward zero
    public void PiIsRoundedByRc(ushort controlWord, ulong significand)
    {
        LoadControlWord(fpu, host, controlWord);
        Run(fpu, host, 0xD9, 0xEB);
        Assert.Equal(F(0x4000, significand), fpu.ReadStack(0));
        Assert.Equal(0, fpu.StatusWord & (ushort)X87Exceptions.Precision);
    }

    [Fact]
    public void PrecisionControlRoundsToSingleWithTheExtendedRange()
    {
        LoadControlWord(fpu, host, 0x007F); // PC = 24 bits
        Run(fpu, host, 0xD9, 0xE8); // 1
        LoadExtended(fpu, host, F(0x3FFF, 0xC000000000000000)); // 1.5
        Run(fpu, host, 0xDE, 0xF9); // FDIVP: 1 / 1.5 = 0.666...
        Assert.Equal(F(0x3FFE, 0xAAAAAB0000000000), fpu.ReadStack(0));
        Assert.Equal(0x0220, fpu.StatusWord & 0x0220); // PE, rounded up
    }

    [Fact]
    public void FcomiSetsZfPfCfAndClearsOfSfAf()
    {
        Run(fpu, host, 0xD9, 0xE8);
        Run(fpu, host, 0xD9, 0xEE); // ST0 = 0, ST1 = 1
        host.Eflags = 0x0892; // OF SF AF set
        Run(fpu, host, 0xDB, 0xF1); // FCOMI ST0, ST1: 0 < 1
        Assert.Equal(0x0003u, host.Eflags & 0x08D7); // CF (and reserved bit 1 kept)
    }

    [Fact]
    public void LoweringAcceptsWaitAndRejectsOtherInstructions()
    {
        var decoder = Iced.Intel.Decoder.Create(32, new ByteArrayCodeReader([0x01, 0xC0]));
        decoder.Decode(out Instruction add);
        Assert.False(X87Instruction.TryLower(add, out _));
        Assert.Equal(X87Operation.Wait, Lower(0x9B).Operation);
        Assert.True(Lower(0xDB, 0xE3).NoWait); // FNINIT
        Assert.False(Lower(0x9B, 0xDB, 0xE3).NoWait); // FINIT
        Assert.Equal(0x1E9, Lower(0xD9, 0xE9).Opcode); // FOP of FLDL2T
        Assert.Equal(0x4C6, Lower(0xDC, 0xC6).Opcode); // FADD ST(6), ST(0)
        Assert.Equal(0x040, Lower([0xD8, 0x40, 0x05], 16).Opcode); // FADD dword [bx+si+5]: mod 1, rm 0
        Assert.Equal(0x006, Lower([0xD8, 0x06, 0x34, 0x12], 16).Opcode); // FADD dword [1234h]: mod 0, rm 6
        Assert.Equal(0x544, Lower(0xDD, 0x44, 0x24, 0x08).Opcode); // FLD qword [esp+8]: SIB, mod 1
        Assert.Equal(0x005, Lower(0xD8, 0x05, 0x00, 0x10, 0x00, 0x00).Opcode); // FADD dword [1000h]: mod 0, rm 5
    }
}

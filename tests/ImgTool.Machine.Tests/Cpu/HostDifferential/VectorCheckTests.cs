using Iced.Intel;

namespace ImgTool.Machine.Tests.Cpu.HostDifferential;

/// <summary>
/// The differential test's own checks, on hand-made vectors: a wrong register, defined flag,
/// memory byte or a missing #DE is reported; an undefined flag is not; and the SDM flag table
/// says what its citations say.
/// </summary>
public sealed class VectorCheckTests
{
    private const uint Reserved = 0x2;
    private static readonly HarnessLayout Layout = new(0x0030_07E0, 64, 0x0030_2000);

    // ADD EAX, ECX (01 C8): 1 + 2 = 3, PF set (two bits), nothing else.
    private static readonly byte[] AddEaxEcx = [0x01, 0xC8];

    private static RegisterState Registers(uint eax, uint ecx, uint eflags, uint edx = 0) =>
        new([eax, ecx, edx, 0, Layout.StackTopAddress, 0, 0, 0], eflags);

    private static HostVector Vector(byte[] bytes, RegisterState input, RegisterState output, int? fault = null, byte[]? memoryIn = null, byte[]? memoryOut = null) =>
        new("TEST", 32, null, bytes, input, memoryIn, fault, output, memoryOut);

    private static string? Check(HostVector vector) =>
        VectorCheck.Compare(vector, VectorCheck.Decode(vector.Bytes).Mnemonic, new FlatProtectedModeCpu(Layout).Run(vector), Layout);

    [Fact]
    public void A_correct_vector_passes()
    {
        Assert.Null(Check(Vector(AddEaxEcx, Registers(1, 2, Reserved), Registers(3, 2, Reserved | DefinedFlags.PF))));
    }

    [Fact]
    public void A_wrong_result_register_is_reported()
    {
        string? failure = Check(Vector(AddEaxEcx, Registers(1, 2, Reserved), Registers(4, 2, Reserved | DefinedFlags.PF)));
        Assert.Contains("eax 00000003 expected 00000004", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_defined_flag_is_reported_by_name()
    {
        string? failure = Check(Vector(AddEaxEcx, Registers(1, 2, Reserved), Registers(3, 2, Reserved | DefinedFlags.PF | DefinedFlags.CF)));
        Assert.Contains("differ: .....C", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void An_undefined_flag_is_not_compared()
    {
        // AND EAX, ECX (21 C8): AF is undefined after a logical operation (SDM vol. 2, AND).
        byte[] andEaxEcx = [0x21, 0xC8];
        Assert.Null(Check(Vector(andEaxEcx, Registers(3, 1, Reserved), Registers(1, 1, Reserved | DefinedFlags.AF))));
    }

    [Fact]
    public void A_wrong_memory_byte_is_reported_with_its_address()
    {
        // ADD [0x300800], ECX (01 0D disp32): the window's middle dword gets 2 added.
        byte[] addMemory = [0x01, 0x0D, 0x00, 0x08, 0x30, 0x00];
        byte[] before = new byte[Layout.MemoryWindowBytes];
        byte[] after = new byte[Layout.MemoryWindowBytes];
        int operand = Layout.MemoryWindowBytes / 2; // the harness puts the operand in the middle of the window
        after[operand] = 2;
        Assert.Null(Check(Vector(addMemory, Registers(0, 2, Reserved), Registers(0, 2, Reserved), memoryIn: before, memoryOut: after)));
        after[operand + 1] = 1;
        Assert.Contains("memory [00300801] 00 expected 01", Check(Vector(addMemory, Registers(0, 2, Reserved), Registers(0, 2, Reserved), memoryIn: before, memoryOut: after)), StringComparison.Ordinal);
    }

    [Fact]
    public void A_divide_error_must_be_raised_with_the_registers_unchanged()
    {
        // DIV ECX (F7 F1) with ECX = 0: #DE, nothing changes.
        byte[] divEcx = [0xF7, 0xF1];
        var state = Registers(5, 0, Reserved | DefinedFlags.ZF, edx: 1);
        Assert.Null(Check(Vector(divEcx, state, state, fault: HostVector.DivideError)));

        // With ECX = 1 there is no fault, so a vector claiming one must fail.
        var noFault = Registers(5, 1, Reserved, edx: 0);
        Assert.Contains("no exception 0", Check(Vector(divEcx, noFault, noFault, fault: HostVector.DivideError)), StringComparison.Ordinal);
    }

    [Fact]
    public void An_invalid_opcode_must_be_raised_where_the_host_raised_it()
    {
        // UD2 (0F 0B) faults; NOP (90) does not.
        var state = Registers(1, 2, Reserved);
        Assert.Null(Check(Vector([0x0F, 0x0B], state, state, fault: HostVector.InvalidOpcode)));
        Assert.Contains("raised exception 6 (the host did not fault)", Check(Vector([0x0F, 0x0B], state, state)), StringComparison.Ordinal);
        Assert.Contains("no exception 6", Check(Vector([0x90], state, state, fault: HostVector.InvalidOpcode)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Mnemonic.Add, 32, null, DefinedFlags.Status)]
    [InlineData(Mnemonic.Xor, 8, null, DefinedFlags.Status & ~DefinedFlags.AF)]
    [InlineData(Mnemonic.Mul, 16, null, DefinedFlags.OF | DefinedFlags.CF)]
    [InlineData(Mnemonic.Idiv, 32, null, 0u)]
    [InlineData(Mnemonic.Shl, 8, 0x20, DefinedFlags.Status)] // masked count 0: no flag changes
    [InlineData(Mnemonic.Shl, 8, 1, DefinedFlags.Status & ~DefinedFlags.AF)]
    [InlineData(Mnemonic.Shl, 8, 8, DefinedFlags.SF | DefinedFlags.ZF | DefinedFlags.PF)] // CF undefined from the operand width on
    [InlineData(Mnemonic.Sar, 8, 8, DefinedFlags.SF | DefinedFlags.ZF | DefinedFlags.PF | DefinedFlags.CF)]
    [InlineData(Mnemonic.Rol, 32, 1, DefinedFlags.Status)]
    [InlineData(Mnemonic.Rcr, 16, 2, DefinedFlags.Status & ~DefinedFlags.OF)]
    [InlineData(Mnemonic.Shld, 16, 17, 0u)]
    [InlineData(Mnemonic.Bt, 32, null, DefinedFlags.CF | DefinedFlags.ZF)]
    [InlineData(Mnemonic.Aam, 8, null, DefinedFlags.SF | DefinedFlags.ZF | DefinedFlags.PF)]
    public void The_flag_table_follows_the_sdm(Mnemonic mnemonic, int sizeBits, int? count, uint compared)
    {
        Assert.Equal(compared, DefinedFlags.Compared(mnemonic, sizeBits, count));
    }
}

using System.Text;
using Iced.Intel;
using ImgTool.Machine.Cpu;

namespace ImgTool.Machine.Tests.Cpu.HostDifferential;

/// <summary>
/// Compares what the emulator did with what the host did: every register bit-exact, the status
/// flags the SDM defines for the instruction (<see cref="DefinedFlags"/>), the other EFLAGS bits
/// unchanged, the memory window, and EIP (after the HLT, or at the #DE handler with the fault's
/// frame on the stack).
/// </summary>
internal static class VectorCheck
{
    private const int ExceptionFrameBytes = 12;

    public static Instruction Decode(byte[] bytes)
    {
        var decoder = Iced.Intel.Decoder.Create(32, new ByteArrayCodeReader(bytes), ImgTool.Machine.Cpu.Decode.BlockCache.Options);
        decoder.Decode(out var instruction);
        return instruction;
    }

    /// <summary>Null when the emulator matched the host, else what differed.</summary>
    public static string? Compare(HostVector vector, Mnemonic mnemonic, EmulatorOutcome actual, HarnessLayout layout)
    {
        if (actual.Exit != CpuExit.Halted)
        {
            return $"stopped with {actual.Exit}: {actual.Diagnosis}";
        }

        var differences = new StringBuilder();
        uint expectedEip = vector.FaultVector is { } fault
            ? FlatProtectedModeCpu.HandlerAddress(fault) + 1
            : FlatProtectedModeCpu.CodeAddress + (uint)vector.Bytes.Length + 1;
        if (actual.Eip != expectedEip)
        {
            differences.Append(DescribeEip(actual.Eip, vector.FaultVector)).Append("; ");
        }

        uint[] expectedGpr = (uint[])vector.Output.Gpr.Clone();
        if (vector.FaultVector is not null)
        {
            // The fault is delivered through a 32-bit gate at the same privilege: EFLAGS, CS and EIP are pushed.
            expectedGpr[X86Cpu.ESP] -= ExceptionFrameBytes;
            CompareFrame(vector, actual.Frame, differences);
        }

        for (int i = 0; i < RegisterState.GprCount; i++)
        {
            if (actual.Registers.Gpr[i] != expectedGpr[i])
            {
                differences.Append($"{VectorText.RegisterNames[i]} {actual.Registers.Gpr[i]:X8} expected {expectedGpr[i]:X8}; ");
            }
        }

        if (vector.FaultVector is null)
        {
            uint compared = DefinedFlags.Compared(mnemonic, vector.SizeBits, vector.Count);
            uint wrong = (actual.Registers.Eflags ^ vector.Output.Eflags) & compared;
            if (wrong != 0)
            {
                differences.Append($"flags {VectorText.Flags(actual.Registers.Eflags)} expected {VectorText.Flags(vector.Output.Eflags)} (differ: {VectorText.Flags(wrong)}); ");
            }

            uint otherBits = (actual.Registers.Eflags ^ vector.Input.Eflags) & ~DefinedFlags.Status;
            if (otherBits != 0)
            {
                differences.Append($"non-status EFLAGS bits changed: {otherBits:X8}; ");
            }
        }

        if (vector.OutputMemory is { } expectedMemory && actual.Memory is { } memory && !memory.AsSpan().SequenceEqual(expectedMemory))
        {
            int at = memory.AsSpan().CommonPrefixLength(expectedMemory);
            differences.Append($"memory [{layout.MemoryWindowAddress + (uint)at:X8}] {memory[at]:X2} expected {expectedMemory[at]:X2} " +
                $"(window {Convert.ToHexString(memory)} expected {Convert.ToHexString(expectedMemory)}); ");
        }

        return differences.Length == 0 ? null : differences.ToString().TrimEnd(' ', ';');
    }

    /// <summary>
    /// The status flags the SDM leaves undefined where the emulator and the host differ: not a
    /// failure, but reported, since they show where this host and the emulator's model part.
    /// </summary>
    public static uint UndefinedFlagsDiffering(HostVector vector, Mnemonic mnemonic, EmulatorOutcome actual) =>
        vector.FaultVector is not null || actual.Exit != CpuExit.Halted
            ? 0
            : (actual.Registers.Eflags ^ vector.Output.Eflags) & DefinedFlags.Status & ~DefinedFlags.Compared(mnemonic, vector.SizeBits, vector.Count);

    /// <summary>A fault leaves the instruction unexecuted (SDM vol. 3, 6.5): the pushed EIP is the instruction's, EFLAGS the host's at the fault.</summary>
    private static void CompareFrame(HostVector vector, ExceptionFrame frame, StringBuilder differences)
    {
        if (frame.Eip != FlatProtectedModeCpu.CodeAddress || (ushort)frame.Cs != FlatProtectedModeCpu.CodeSelector)
        {
            differences.Append($"exception frame CS:EIP {(ushort)frame.Cs:X4}:{frame.Eip:X8} expected {FlatProtectedModeCpu.CodeSelector:X4}:{FlatProtectedModeCpu.CodeAddress:X8}; ");
        }

        uint wrong = (frame.Eflags ^ vector.Output.Eflags) & DefinedFlags.Status;
        if (wrong != 0)
        {
            differences.Append($"exception frame flags {VectorText.Flags(frame.Eflags)} expected {VectorText.Flags(vector.Output.Eflags)} (differ: {VectorText.Flags(wrong)}); ");
        }
    }

    private static string DescribeEip(uint eip, int? expectedFault)
    {
        for (int vector = 0; vector < FlatProtectedModeCpu.VectorCount; vector++)
        {
            if (eip == FlatProtectedModeCpu.HandlerAddress(vector) + 1)
            {
                return expectedFault is { } fault
                    ? $"raised exception {vector} instead of {fault}"
                    : $"raised exception {vector} (the host did not fault)";
            }
        }

        return expectedFault is { } expected ? $"no exception {expected} (EIP {eip:X8})" : $"EIP {eip:X8}";
    }
}

/// <summary>Register and flag names for the messages.</summary>
internal static class VectorText
{
    public static readonly string[] RegisterNames = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];

    private static readonly (uint Bit, char Name)[] FlagNames =
    [
        (DefinedFlags.OF, 'O'), (DefinedFlags.SF, 'S'), (DefinedFlags.ZF, 'Z'), (DefinedFlags.AF, 'A'), (DefinedFlags.PF, 'P'), (DefinedFlags.CF, 'C'),
    ];

    /// <summary>The status flags as letters, e.g. "O.Z.PC" (a dot for a clear flag).</summary>
    public static string Flags(uint eflags) => new(FlagNames.Select(f => (eflags & f.Bit) != 0 ? f.Name : '.').ToArray());
}

using System.Globalization;

namespace ImgTool.Machine.Tests.Cpu.HostDifferential;

/// <summary>The eight general registers in encoding order (EAX ECX EDX EBX ESP EBP ESI EDI) and EFLAGS.</summary>
internal sealed record RegisterState(uint[] Gpr, uint Eflags)
{
    public const int GprCount = 8;

    public override string ToString() =>
        string.Join(' ', Gpr.Select((value, i) => $"{VectorText.RegisterNames[i]}={value:X8}")) + $" eflags={Eflags:X8}";
}

/// <summary>
/// One instruction the host CPU ran (tools/cpu-harness/alu/vector.c documents the line format):
/// its group, operand size, shift count, bytes, inputs, and what the host did: a result, or a
/// fault (<see cref="FaultVector"/> 0 for #DE, 6 for #UD) with the registers at the fault.
/// </summary>
internal sealed record HostVector(
    string Group,
    int SizeBits,
    int? Count,
    byte[] Bytes,
    RegisterState Input,
    byte[]? InputMemory,
    int? FaultVector,
    RegisterState Output,
    byte[]? OutputMemory)
{
    private const char FieldSeparator = '|';
    private const string NoValue = "-";
    public const int DivideError = 0, InvalidOpcode = 6; // SDM vol. 3, table 6-1

    /// <summary>The marks the harness puts before the registers of a faulting vector.</summary>
    private static readonly (string Mark, int Vector)[] FaultMarks = [("#DE ", DivideError), ("#UD ", InvalidOpcode)];
    private const int FieldCount = 9;

    /// <summary>Parses a "V|..." line.</summary>
    public static HostVector Parse(string line)
    {
        string[] fields = line.Split(FieldSeparator);
        if (fields.Length != FieldCount || fields[0] != "V")
        {
            throw new FormatException($"not a vector line: {line}");
        }

        string output = fields[7];
        int? fault = null;
        foreach (var (mark, vector) in FaultMarks)
        {
            if (output.StartsWith(mark, StringComparison.Ordinal))
            {
                fault = vector;
                output = output[mark.Length..];
            }
        }

        return new HostVector(
            fields[1],
            int.Parse(fields[2], CultureInfo.InvariantCulture),
            fields[3] == NoValue ? null : int.Parse(fields[3], CultureInfo.InvariantCulture),
            Convert.FromHexString(fields[4]),
            ParseRegisters(fields[5]),
            ParseMemory(fields[6]),
            fault,
            ParseRegisters(output),
            ParseMemory(fields[8]));
    }

    /// <summary>"divide error" or "invalid opcode", for the messages.</summary>
    public string? FaultName => FaultVector switch
    {
        DivideError => "divide error",
        InvalidOpcode => "invalid opcode",
        null => null,
        _ => $"exception {FaultVector}",
    };

    private static RegisterState ParseRegisters(string text)
    {
        string[] words = text.Split(' ');
        if (words.Length != RegisterState.GprCount + 1)
        {
            throw new FormatException($"expected {RegisterState.GprCount} registers and EFLAGS: {text}");
        }

        uint[] values = words.Select(w => uint.Parse(w, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
        return new RegisterState(values[..RegisterState.GprCount], values[RegisterState.GprCount]);
    }

    private static byte[]? ParseMemory(string text) => text == NoValue ? null : Convert.FromHexString(text);
}

/// <summary>The "H|..." line: where the harness put the memory window and the stack.</summary>
internal sealed record HarnessLayout(uint MemoryWindowAddress, int MemoryWindowBytes, uint StackTopAddress)
{
    public static HarnessLayout Parse(string line)
    {
        string[] fields = line.Split('|');
        if (fields.Length != 4 || fields[0] != "H")
        {
            throw new FormatException($"not a header line: {line}");
        }

        return new HarnessLayout(
            uint.Parse(fields[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            int.Parse(fields[2], CultureInfo.InvariantCulture),
            uint.Parse(fields[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
    }
}

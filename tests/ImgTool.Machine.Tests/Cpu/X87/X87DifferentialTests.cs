using System.Globalization;
using System.Numerics;
using System.Text;
using ImgTool.Machine.Cpu.X87;
using Xunit.Abstractions;

namespace ImgTool.Machine.Tests.Cpu.X87;

/// <summary>
/// The acceptance test of the FPU: the host's real x87 runs every operation on random and targeted operands
/// under every RC/PC and masked/unmasked exceptions (tools/cpu-harness/x87), and X87Fpu must agree bit for bit
/// (status word, tag word, every non-empty register, memory written, EFLAGS, FNSAVE's CW/SW/TW dwords and FOP),
/// except that transcendental results may differ by <see cref="TranscendentalUlps"/> and their PE/UE/C1.
/// </summary>
public sealed class X87DifferentialTests(ITestOutputHelper output)
{
    /// <summary>The accuracy bound enforced on FSIN/FCOS/FSINCOS/FPTAN/FPATAN/F2XM1/FYL2X/FYL2XP1 results.</summary>
    public const int TranscendentalUlps = 1;

    private const uint ComparedEflags = 0x8D5;
    private const ushort TranscendentalLooseStatus = 0x0200 | 0x0020 | 0x0010 | 0x0080 | 0x8000;
    private const int MemoryBytes = 10;
    private const int ReportedFailuresPerOperation = 3;

    private static readonly HashSet<string> Transcendental =
        ["fsin", "fcos", "fsincos", "fptan", "fpatan", "f2xm1", "fyl2x", "fyl2xp1", "fsincos_full", "fptan_full"];

    [Fact]
    public void ExactOperationsMatchTheHostFpu() => Check(transcendental: false);

    [Fact]
    public void TranscendentalsAreWithinTheUlpBound() => Check(transcendental: true);

    private void Check(bool transcendental)
    {
        string[] lines = X87Harness.Lines;
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        var statistics = new SortedDictionary<string, (int Passed, int Failed, long MaxUlps)>(StringComparer.Ordinal);
        var failures = new StringBuilder();
        int total = 0;
        int failed = 0;
        foreach (string line in lines)
        {
            string name = line[..line.IndexOf(' ', StringComparison.Ordinal)];
            if (Transcendental.Contains(name) != transcendental)
            {
                continue;
            }

            total++;
            string? problem = Replay(line, transcendental, out long ulps);
            (int passed, int bad, long maxUlps) = statistics.GetValueOrDefault(name);
            maxUlps = Math.Max(maxUlps, ulps);
            if (problem is null)
            {
                statistics[name] = (passed + 1, bad, maxUlps);
                continue;
            }

            failed++;
            statistics[name] = (passed, bad + 1, maxUlps);
            if (bad < ReportedFailuresPerOperation)
            {
                failures.Append(line).Append("\n    => ").Append(problem).Append('\n');
            }
        }

        var report = new StringBuilder();
        report.Append(CultureInfo.InvariantCulture, $"{total} cases, {failed} failed, replayed in {stopwatch.ElapsedMilliseconds} ms\n");
        foreach ((string name, (int passed, int bad, long maxUlps)) in statistics)
        {
            double rate = 100.0 * passed / (passed + bad);
            report.Append(CultureInfo.InvariantCulture, $"  {name,-14} {passed,6}/{passed + bad,-6} {rate,7:F2}%");
            if (transcendental)
            {
                report.Append(CultureInfo.InvariantCulture, $"  max {maxUlps} ulp");
            }

            report.Append('\n');
        }

        output.WriteLine(report.ToString());
        Assert.True(total > 0, "the harness produced no cases");
        Assert.True(failed == 0, report + "\nfirst failures (line => difference):\n" + failures);
    }

    /// <summary>Replays one harness line through X87Fpu; null when it agrees, else what differs.</summary>
    private static string? Replay(string line, bool transcendental, out long ulps)
    {
        ulps = 0;
        string[] field = line.Split(' ');
        byte[] bytes = [.. field[1].Split(',').Select(b => Convert.ToByte(b, 16))];
        ushort controlWord = ushort.Parse(field[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        Float80 a = X87TestKit.Parse(field[3]);
        Float80 b = X87TestKit.Parse(field[4]);
        byte[] memoryIn = Convert.FromHexString(field[5]);
        uint eflagsIn = uint.Parse(field[6], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        ushort status = ushort.Parse(field[8], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        ushort tags = ushort.Parse(field[9], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        Float80[] stack = [.. field.Skip(10).Take(X87Fpu.RegisterCount).Select(X87TestKit.Parse)];
        byte[] memoryOut = Convert.FromHexString(field[18]);
        uint eflagsOut = uint.Parse(field[19], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        ushort ax = ushort.Parse(field[20], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        byte[] header = Convert.FromHexString(field[21]);

        var fpu = new X87Fpu();
        var host = new FakeFpuHost();
        X87TestKit.LoadControlWord(fpu, host, controlWord);
        X87TestKit.LoadExtended(fpu, host, b);
        X87TestKit.LoadExtended(fpu, host, a);
        host.Memory.AsSpan().Fill(0xCC);
        memoryIn.CopyTo(host.Memory, 0);
        host.Eflags = eflagsIn;
        // A case is one instruction or a short sequence (stack-fault set-ups): every instruction goes through X87Fpu.
        foreach (X87Instruction instruction in X87TestKit.LowerAll(bytes))
        {
            X87Outcome outcome = fpu.Execute(instruction, host, X87TestKit.Protected32);
            if (outcome != X87Outcome.Completed)
            {
                return "outcome " + outcome;
            }
        }

        var differences = new StringBuilder();
        ushort looseStatus = transcendental ? TranscendentalLooseStatus : (ushort)0;
        if ((fpu.StatusWord & ~looseStatus) != (status & ~looseStatus))
        {
            differences.Append(CultureInfo.InvariantCulture, $"SW {fpu.StatusWord:X4} expected {status:X4}; ");
        }

        if (fpu.TagWord != tags && !transcendental)
        {
            differences.Append(CultureInfo.InvariantCulture, $"TW {fpu.TagWord:X4} expected {tags:X4}; ");
        }

        for (int index = 0; index < X87Fpu.RegisterCount; index++)
        {
            int physical = (((status >> 11) & 7) + index) & 7;
            if (((tags >> (physical * 2)) & 3) == 3)
            {
                continue;
            }

            Float80 actual = fpu.ReadStack(index);
            Float80 expected = stack[index];
            if (actual == expected)
            {
                continue;
            }

            long distance = transcendental ? UlpDistance(actual, expected) : long.MaxValue;
            ulps = Math.Max(ulps, distance);
            if (distance > TranscendentalUlps)
            {
                differences.Append(CultureInfo.InvariantCulture, $"ST{index} {actual} expected {expected}");
                differences.Append(transcendental ? $" ({distance} ulp); " : "; ");
            }
        }

        if (!host.Memory.AsSpan(0, MemoryBytes).SequenceEqual(memoryOut))
        {
            differences.Append(CultureInfo.InvariantCulture, $"memory {Convert.ToHexString(host.Memory, 0, MemoryBytes)} expected {field[18]}; ");
        }

        if ((host.Eflags & ComparedEflags) != eflagsOut)
        {
            differences.Append(CultureInfo.InvariantCulture, $"EFLAGS {host.Eflags & ComparedEflags:X3} expected {eflagsOut:X3}; ");
        }

        if (field[0] == "fnstsw_ax" && host.Ax != ax)
        {
            differences.Append(CultureInfo.InvariantCulture, $"AX {host.Ax:X4} expected {ax:X4}; ");
        }

        // FNSAVE: the CW/SW/TW dwords (reserved halves included) and FOP must match the hardware's image.
        Assert.Equal(X87Outcome.Completed, X87TestKit.Run(fpu, host, 0xDD, 0x30));
        const int Dwords = 12;
        const int OpcodeOffset = 18;
        if (!transcendental && !host.Memory.AsSpan(0, Dwords).SequenceEqual(header.AsSpan(0, Dwords)))
        {
            differences.Append(CultureInfo.InvariantCulture, $"FNSAVE header {Convert.ToHexString(host.Memory, 0, Dwords)} expected {Convert.ToHexString(header, 0, Dwords)}; ");
        }

        // FNSTSW is a control instruction: FOP still holds the harness's own FLD (another ModR/M than ours).
        // An expected FOP of 0 is the host kernel's doing (a context switch in the middle of a case restores the
        // state with FOP cleared, about once in 300,000 cases), not the instruction's.
        bool hostClearedOpcode = header[OpcodeOffset] == 0 && header[OpcodeOffset + 1] == 0;
        if (field[0] != "fnstsw_ax" && !hostClearedOpcode && !host.Memory.AsSpan(OpcodeOffset, 2).SequenceEqual(header.AsSpan(OpcodeOffset, 2)))
        {
            differences.Append(CultureInfo.InvariantCulture, $"FOP {Convert.ToHexString(host.Memory, OpcodeOffset, 2)} expected {Convert.ToHexString(header, OpcodeOffset, 2)}; ");
        }

        return differences.Length == 0 ? null : differences.ToString();
    }

    /// <summary>Units in the last place between two values of the same sign and kind; long.MaxValue otherwise.</summary>
    private static long UlpDistance(Float80 x, Float80 y)
    {
        if (x.Sign != y.Sign || x.Class is not (Float80Class.Normal or Float80Class.Denormal or Float80Class.Zero)
            || y.Class is not (Float80Class.Normal or Float80Class.Denormal or Float80Class.Zero))
        {
            return long.MaxValue;
        }

        BigInteger Key(Float80 v) => ((BigInteger)v.BiasedExponent << 63) + (v.Significand & ~Float80.IntegerBit)
            + (v.BiasedExponent == 0 ? v.Significand & Float80.IntegerBit : 0);
        BigInteger distance = BigInteger.Abs(Key(x) - Key(y));
        return distance > long.MaxValue ? long.MaxValue : (long)distance;
    }
}

using ImgTool.Machine.Bus;
using ImgTool.Machine.Cpu;
using ImgTool.Machine.Cpu.Jit;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Tests.Cpu.Jit;

/// <summary>
/// Regions: a 32-bit loop of three blocks (its head, a conditional side block, the join) on one page runs as one
/// translated method, and retires exactly what the interpreter retires whatever the budget of each Run call, so
/// the jumps between members stop at the budget as the run loop does. The loop body uses the ops translated with
/// the interpreter's helpers (ADC, ROL by CL, SHR, IMUL, CMP/SUB/SBB against memory, SETcc, CMOVcc from a register
/// and from memory).
/// </summary>
public sealed class RegionTests
{
    private const uint Code = 0x10000;
    private const uint Data = 0x20000;
    private const int Iterations = 20_000;

    [Theory]
    [InlineData(1_000_000)]
    [InlineData(777)]
    [InlineData(13)]
    public void A_loop_of_three_blocks_runs_as_one_region_with_the_interpreters_counts(int budget)
    {
        var interpreted = new FlatCpu(JitSettings.Off);
        var translated = new FlatCpu(new JitSettings(true, HotThreshold: 20));
        List<long> a = interpreted.RunToHalt(budget);
        List<long> b = translated.RunToHalt(budget);

        Assert.Equal(a, b);
        Assert.Equal(interpreted.Cpu.R, translated.Cpu.R);
        Assert.Equal(interpreted.Cpu.Eflags, translated.Cpu.Eflags);
        Assert.Equal(interpreted.Cpu.Eip, translated.Cpu.Eip);
        Assert.Equal(interpreted.Memory.Read32(Data), translated.Memory.Read32(Data));

        var statistics = translated.Cpu.JitStatistics!;
        Assert.True(statistics.RegionBlocks > statistics.BlocksTranslated, $"{statistics.RegionBlocks} blocks in {statistics.BlocksTranslated} regions: none holds more than its head");
        if (budget > 100)
        {
            Assert.True(statistics.InstructionsTranslated > translated.Cpu.Instructions * 9 / 10,
                $"{statistics.InstructionsTranslated} of {translated.Cpu.Instructions} instructions translated");
        }
    }

    /// <summary>
    /// Folded conditions: CMP, SUB, TEST and AND followed at once by each of the 16 Jcc (and SETcc) give, on edge and
    /// random operand pairs, the interpreter's answer; the folding reads the compare's locals instead of the flags.
    /// </summary>
    [Theory]
    [InlineData(0x39, false)] // cmp eax, ebx
    [InlineData(0x29, false)] // sub eax, ebx
    [InlineData(0x85, false)] // test eax, ebx
    [InlineData(0x21, false)] // and eax, ebx
    [InlineData(0x39, true)]
    [InlineData(0x29, true)]
    [InlineData(0x85, true)]
    [InlineData(0x21, true)]
    public void Conditions_folded_into_the_compare_before_them_agree_with_the_interpreter(byte opcode, bool setcc)
    {
        uint[] edges = [0, 1, 2, 0x7FFF_FFFF, 0x8000_0000, 0x8000_0001, 0xFFFF_FFFF, 0xFFFF_FFFE];
        var random = new Random(11);
        var pairs = new List<(uint A, uint B)>();
        foreach (uint a in edges)
        {
            foreach (uint b in edges)
            {
                pairs.Add((a, b));
            }
        }

        for (int i = 0; i < 64; i++)
        {
            pairs.Add(((uint)random.NextInt64(0, 1L << 32), (uint)random.NextInt64(0, 1L << 32)));
        }

        for (int condition = 0; condition < 16; condition++)
        {
            byte[] program = ConditionProgram(opcode, condition, setcc, pairs.Count);
            var (expected, actual, translated) = RunBoth(program, pairs, pairs.Count);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"condition {condition:X}: the translation answers {Convert.ToHexString(actual)}, the interpreter {Convert.ToHexString(expected)}");
            Assert.True(translated.Cpu.JitStatistics!.InstructionsTranslated > 0);
        }
    }

    /// <summary>
    /// SHL, SHR, SAR and SAL (and ROL, ROR by immediates), translated inline, on 8-, 16- and 32-bit registers by 1,
    /// by CL and by immediates, give the interpreter's result and EFLAGS (all of it, as PUSHFD sees it; a rotate
    /// keeps what the TEST before it set) for edge and random values and every count of 0 to 31 (a zero count
    /// changes nothing, not even the flags).
    /// </summary>
    [Theory]
    [InlineData(0)] // rol
    [InlineData(1)] // ror
    [InlineData(4)] // shl
    [InlineData(5)] // shr
    [InlineData(6)] // sal
    [InlineData(7)] // sar
    public void Shifts_and_rotates_translated_inline_give_the_interpreters_result_and_flags(int kind)
    {
        uint[] edges = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1234_5678];
        var random = new Random(kind);
        var pairs = new List<(uint Value, uint Count)>();
        foreach (uint value in edges)
        {
            for (uint count = 0; count < 32; count++)
            {
                pairs.Add((value, count | (count << 5))); // the high bits of CL are masked off
            }
        }

        for (int i = 0; i < 64; i++)
        {
            pairs.Add(((uint)random.NextInt64(0, 1L << 32), (uint)random.Next(0, 256)));
        }

        foreach (int size in new[] { 1, 2, 4 })
        {
            foreach (int? immediate in new int?[] { null, 1, 3, 7, 8, 15, 16, 17, 31 })
            {
                byte[] program = ShiftProgram(kind, size, immediate, pairs.Count);
                var (expected, actual, translated) = RunBoth(program, pairs, 8 * pairs.Count);
                for (int i = 0; i < pairs.Count; i++)
                {
                    Assert.True(expected.AsSpan(8 * i, 8).SequenceEqual(actual.AsSpan(8 * i, 8)),
                        $"kind {kind}, size {size}, count {immediate?.ToString() ?? "CL"}, value {pairs[i].Value:X8}, CL {pairs[i].Count:X2}: " +
                        $"translated result/flags {Convert.ToHexString(actual, 8 * i, 8)}, interpreted {Convert.ToHexString(expected, 8 * i, 8)}");
                }

                Assert.True(translated.Cpu.JitStatistics!.InstructionsTranslated > translated.Cpu.Instructions / 2);
            }
        }
    }

    /// <summary>For each (value, count) pair: EAX = value, ECX = count, the shift, then EAX and PUSHFD's EFLAGS stored.</summary>
    private static byte[] ShiftProgram(int kind, int size, int? immediate, int count)
    {
        var code = new List<byte>();
        code.AddRange([0xBE, .. BitConverter.GetBytes(Data)]);    // mov esi, Data
        code.AddRange([0xBF, .. BitConverter.GetBytes(Output)]);  // mov edi, Output
        code.AddRange([0xBD, .. BitConverter.GetBytes(count)]);   // mov ebp, count
        int top = code.Count;
        code.AddRange([0x8B, 0x06]);                              // mov eax, [esi]
        code.AddRange([0x8B, 0x4E, 0x04]);                        // mov ecx, [esi+4]
        code.AddRange([0x85, 0xC0]);                              // test eax, eax: flags a zero count must keep
        if (size == 2)
        {
            code.Add(0x66);
        }

        byte modrm = (byte)(0xC0 | (kind << 3));                  // the shift of al/ax/eax
        if (immediate is null)
        {
            code.AddRange([size == 1 ? (byte)0xD2 : (byte)0xD3, modrm]);
        }
        else if (immediate == 1)
        {
            code.AddRange([size == 1 ? (byte)0xD0 : (byte)0xD1, modrm]);
        }
        else
        {
            code.AddRange([size == 1 ? (byte)0xC0 : (byte)0xC1, modrm, (byte)immediate]);
        }

        code.AddRange([0x89, 0x07]);                              // mov [edi], eax
        code.Add(0x9C);                                           // pushfd
        code.AddRange([0x8F, 0x47, 0x04]);                        // pop dword [edi+4]
        code.AddRange([0x83, 0xC6, 0x08]);                        // add esi, 8
        code.AddRange([0x83, 0xC7, 0x08]);                        // add edi, 8
        code.Add(0x4D);                                           // dec ebp
        code.AddRange([0x75, (byte)(sbyte)(top - (code.Count + 2))]); // jnz top
        code.Add(0xF4);                                           // hlt
        return [.. code];
    }

    private const uint Output = 0x30000;

    /// <summary>
    /// The program run interpreted and translated (every block hot at its second run) over the same operand pairs
    /// at <see cref="Data"/>: the bytes each left at <see cref="Output"/>, and the translating CPU.
    /// </summary>
    private static (byte[] Expected, byte[] Actual, FlatCpu Translated) RunBoth(byte[] program, IReadOnlyList<(uint, uint)> pairs, int outputBytes)
    {
        var interpreted = new FlatCpu(JitSettings.Off, program);
        var translated = new FlatCpu(new JitSettings(true, HotThreshold: 2), program);
        foreach (var cpu in new[] { interpreted, translated })
        {
            for (int i = 0; i < pairs.Count; i++)
            {
                cpu.Memory.Write32(Data + (uint)(8 * i), pairs[i].Item1);
                cpu.Memory.Write32(Data + (uint)(8 * i) + 4, pairs[i].Item2);
            }

            cpu.RunToHalt(1_000_000);
        }

        byte[] expected = new byte[outputBytes];
        byte[] actual = new byte[outputBytes];
        interpreted.Memory.ReadBlock(Output, expected);
        translated.Memory.ReadBlock(Output, actual);
        return (expected, actual, translated);
    }

    private static byte[] ConditionProgram(byte opcode, int condition, bool setcc, int count)
    {
        var code = new List<byte>();
        code.AddRange([0xBE, .. BitConverter.GetBytes(Data)]);    // mov esi, Data
        code.AddRange([0xBF, .. BitConverter.GetBytes(Output)]);  // mov edi, Output
        code.AddRange([0xB9, .. BitConverter.GetBytes(count)]);   // mov ecx, count
        int top = code.Count;
        code.AddRange([0x8B, 0x06]);                              // mov eax, [esi]
        code.AddRange([0x8B, 0x5E, 0x04]);                        // mov ebx, [esi+4]
        code.AddRange([opcode, 0xD8]);                            // op eax, ebx
        if (setcc)
        {
            code.AddRange([0x0F, (byte)(0x90 + condition), 0xC2]); // setcc dl
            code.AddRange([0x88, 0x17]);                          // mov [edi], dl
        }
        else
        {
            code.AddRange([(byte)(0x70 + condition), 0x05]);      // jcc taken
            code.AddRange([0xC6, 0x07, 0x00]);                    // mov byte [edi], 0
            code.AddRange([0xEB, 0x03]);                          // jmp next
            code.AddRange([0xC6, 0x07, 0x01]);                    // taken: mov byte [edi], 1
        }

        code.AddRange([0x83, 0xC6, 0x08]);                        // next: add esi, 8
        code.Add(0x47);                                           // inc edi
        code.Add(0x49);                                           // dec ecx
        code.AddRange([0x75, (byte)(sbyte)(top - (code.Count + 2))]); // jnz top
        code.Add(0xF4);                                           // hlt
        return [.. code];
    }

    private static byte[] Program()
    {
        var code = new List<byte>();
        code.AddRange([0xB9, .. BitConverter.GetBytes(Iterations)]);   // mov ecx, Iterations
        code.AddRange([0x31, 0xC0]);                                   // xor eax, eax
        code.AddRange([0xBB, 0x78, 0x56, 0x34, 0x12]);                 // mov ebx, 12345678h
        int loopTop = code.Count;
        code.AddRange([0x01, 0xC8]);                                   // add eax, ecx
        code.AddRange([0x83, 0xD2, 0x00]);                             // adc edx, 0
        code.AddRange([0xD3, 0xC3]);                                   // rol ebx, cl
        code.AddRange([0x6B, 0xF1, 0x03]);                             // imul esi, ecx, 3
        code.AddRange([0xC1, 0xEE, 0x03]);                             // shr esi, 3
        code.AddRange([0xF6, 0xC1, 0x01]);                             // test cl, 1
        code.AddRange([0x74, 0x02]);                                   // jz +2 (a second block starts at the target)
        code.AddRange([0x47, 0x47]);                                   // inc edi; inc edi
        code.AddRange([0xA3, .. BitConverter.GetBytes(Data)]);         // mov [Data], eax
        code.AddRange([0x83, 0x3D, .. BitConverter.GetBytes(Data), 0x05]); // cmp dword [Data], 5
        code.AddRange([0x2B, 0x35, .. BitConverter.GetBytes(Data)]);   // sub esi, [Data]
        code.AddRange([0x1B, 0x3D, .. BitConverter.GetBytes(Data)]);   // sbb edi, [Data]
        code.AddRange([0x0F, 0x9F, 0xC6]);                             // setg dh
        code.AddRange([0x0F, 0x4C, 0xE9]);                             // cmovl ebp, ecx
        code.AddRange([0x0F, 0x4F, 0x1D, .. BitConverter.GetBytes(Data)]); // cmovg ebx, [Data]
        code.Add(0x49);                                                // dec ecx
        code.AddRange([0x75, (byte)(sbyte)(loopTop - (code.Count + 2))]); // jnz loop top
        code.Add(0xF4);                                                // hlt
        return [.. code];
    }

    /// <summary>A CPU in 32-bit flat protected mode at ring 0 (no paging, no descriptor tables: nothing loads a segment).</summary>
    private sealed class FlatCpu
    {
        public FlatCpu(JitSettings jit, byte[]? program = null)
        {
            Memory = new PhysicalMemory(1 << 20);
            Cpu = new X86Cpu(Memory, new IoBus(), jit);
            Memory.WriteBlock(Code, program ?? Program());
            Cpu.Cr0 |= ControlBits.Cr0PE;
            for (int segment = 0; segment < 6; segment++)
            {
                Cpu.S[segment] = new SegmentRegister { Selector = 0x10, Base = 0, Limit = 0xFFFF_FFFF, Attributes = 0x93 | SegmentRegister.AttrBig | 0x8000 };
            }

            Cpu.S[X86Cpu.CS] = new SegmentRegister { Selector = 0x08, Base = 0, Limit = 0xFFFF_FFFF, Attributes = 0x9B | SegmentRegister.AttrBig | 0x8000 };
            Cpu.R[X86Cpu.ESP] = 0x80000;
            Cpu.Eip = Code;
        }

        public X86Cpu Cpu { get; }

        public PhysicalMemory Memory { get; }

        /// <summary>Runs in calls of the given budget until HLT; the instruction count after each call.</summary>
        public List<long> RunToHalt(int budget)
        {
            var counts = new List<long>();
            for (int calls = 0; calls < 10_000_000; calls++)
            {
                var exit = Cpu.Run(budget);
                counts.Add(Cpu.Instructions);
                if (exit == CpuExit.Halted)
                {
                    return counts;
                }

                Assert.Equal(CpuExit.Budget, exit);
            }

            throw new InvalidOperationException("the loop never halted");
        }
    }
}

using System.Globalization;
using ImgTool.Block.Devices;
using ImgTool.Machine.Cpu;
using ImgTool.Machine.Cpu.Jit;

namespace ImgTool.Machine;

/// <summary>The outcome of a lockstep run: how far the two machines agreed, and the first divergence if any.</summary>
/// <param name="Instructions">Instructions both machines retired in agreement.</param>
/// <param name="BlocksCompared">Block ends whose register state was compared.</param>
/// <param name="TranslatedBlocksCompared">Of those, blocks the translating machine ran translated.</param>
/// <param name="Divergence">Null when the runs agreed; else the first difference with both register states.</param>
public sealed record LockstepReport(long Instructions, long BlocksCompared, long TranslatedBlocksCompared, string? Divergence, string Serial);

/// <summary>
/// The translator's correctness harness (issue 11): the same boot on two machines, one interpreting only and one
/// translating (with a low hot threshold, so that much of the code runs translated), compared after every block:
/// the instruction count, EIP, the general registers, EFLAGS, segment selectors and control registers, and RAM
/// every so often and at the end. Both machines are deterministic (virtual time is the instruction count), so any
/// difference is the translator's. The interpreter runs a chunk first and records its states; the translating
/// machine then runs the same chunk and checks each block end against the record, so memory stays bounded.
/// </summary>
public static class Lockstep
{
    private const long ChunkInstructions = 2_000_000;

    /// <summary>RAM is compared every this many chunks (reading all of it twice costs some tens of milliseconds).</summary>
    private const int ChunksPerMemoryCompare = 50;

    public static LockstepReport Run(IBlockDevice disk, BootSettings settings, long maxInstructions, int hotThreshold = 20)
    {
        // Each machine writes to its own overlay (dropped with it): neither sees the other's writes.
        var diskA = new CopyOnWriteOverlay(disk);
        var diskB = new CopyOnWriteOverlay(disk);
        var interpreted = new PcMachine(new MachineOptions(settings.Firmware, settings.MemoryBytes, diskA, Jit: JitSettings.Off));
        var translated = new PcMachine(new MachineOptions(settings.Firmware, settings.MemoryBytes, diskB, Jit: new JitSettings(true, hotThreshold)));
        var recorder = new Recorder();
        var checker = new Checker(recorder);
        interpreted.Cpu.BlockObserver = recorder;
        translated.Cpu.BlockObserver = checker;
        var patterns = settings.Expect;
        int chunks = 0;
        for (long target = 0; target < maxInstructions && checker.Divergence is null;)
        {
            target = Math.Min(target + ChunkInstructions, maxInstructions);
            recorder.States.Clear();
            checker.Next = 0;
            var a = interpreted.Run(_ => false, target, TimeSpan.FromHours(1));
            var b = translated.Run(_ => false, target, TimeSpan.FromHours(1));
            if (checker.Divergence is not null)
            {
                break;
            }

            if (checker.Next != recorder.States.Count || a.Outcome != b.Outcome)
            {
                checker.Divergence = $"the runs ended differently: interpreter {a.Outcome} after {recorder.States.Count} blocks at {interpreted.Instructions}, " +
                    $"translation {b.Outcome} after {checker.Next} blocks at {translated.Instructions}";
                break;
            }

            if (++chunks % ChunksPerMemoryCompare == 0 || a.Outcome != MachineOutcome.InstructionBudget || target >= maxInstructions)
            {
                checker.Divergence = CompareMemory(interpreted, translated);
            }

            if (a.Outcome != MachineOutcome.InstructionBudget || (patterns.Count > 0 && patterns.All(p => p.IsMatch(translated.Serial.ToString()))))
            {
                break;
            }
        }

        return new LockstepReport(translated.Instructions, checker.Compared, checker.TranslatedCompared, checker.Divergence, translated.Serial.ToString());
    }

    private static string? CompareMemory(PcMachine a, PcMachine b)
    {
        const int Piece = 1 << 20;
        var left = new byte[Piece];
        var right = new byte[Piece];
        for (uint address = 0; address < a.Memory.RamSizeBytes; address += Piece)
        {
            a.Memory.ReadBlock(address, left);
            b.Memory.ReadBlock(address, right);
            if (!left.AsSpan().SequenceEqual(right))
            {
                int at = left.AsSpan().CommonPrefixLength(right);
                return string.Create(CultureInfo.InvariantCulture,
                    $"RAM differs at {address + (uint)at:X8} ({left[at]:X2} interpreted, {right[at]:X2} translated) by instruction {a.Instructions}");
            }
        }

        return null;
    }

    /// <summary>The architectural state compared after each block (flags computed without disturbing the lazy record).</summary>
    private readonly record struct CpuState(
        long Instructions, uint Eip, uint Eax, uint Ecx, uint Edx, uint Ebx, uint Esp, uint Ebp, uint Esi, uint Edi, uint Eflags,
        ushort Cs, ushort Ss, ushort Ds, ushort Es, ushort Fs, ushort Gs, uint Cr0, uint Cr3)
    {
        public static CpuState Of(X86Cpu c) => new(
            c.Instructions, c.Eip, c.R[0], c.R[1], c.R[2], c.R[3], c.R[4], c.R[5], c.R[6], c.R[7], c.EflagsWithoutMaterializing(),
            c.S[X86Cpu.CS].Selector, c.S[X86Cpu.SS].Selector, c.S[X86Cpu.DS].Selector, c.S[X86Cpu.ES].Selector,
            c.S[X86Cpu.FS].Selector, c.S[X86Cpu.GS].Selector, c.Cr0, c.Cr3);

        public override string ToString() => string.Create(CultureInfo.InvariantCulture,
            $"#{Instructions} {Cs:X4}:{Eip:X8} eax={Eax:X8} ecx={Ecx:X8} edx={Edx:X8} ebx={Ebx:X8} esp={Esp:X8} ebp={Ebp:X8} esi={Esi:X8} edi={Edi:X8} " +
            $"eflags={Eflags:X8} ss={Ss:X4} ds={Ds:X4} es={Es:X4} fs={Fs:X4} gs={Gs:X4} cr0={Cr0:X8} cr3={Cr3:X8}");
    }

    private sealed class Recorder : IBlockObserver
    {
        public readonly List<CpuState> States = [];

        public void BlockEnded(X86Cpu cpu) => States.Add(CpuState.Of(cpu));
    }

    private sealed class Checker(Recorder recorder) : IBlockObserver
    {
        public int Next;
        public long Compared;
        public long TranslatedCompared;
        public string? Divergence;
        private CpuState _previous;

        public void BlockEnded(X86Cpu cpu)
        {
            if (Divergence is not null)
            {
                return;
            }

            var state = CpuState.Of(cpu);

            // A translated region runs several blocks before the loop sees it again: compare where both stopped.
            while (Next < recorder.States.Count && recorder.States[Next].Instructions < state.Instructions)
            {
                Next++;
            }

            if (Next >= recorder.States.Count)
            {
                Divergence = $"the translating machine ran on past the interpreter's last block: {state}";
                cpu.Stop(CpuExit.Stopped, "lockstep divergence");
                return;
            }

            var expected = recorder.States[Next++];
            if (state != expected)
            {
                Divergence = $"first divergence after a {(cpu.LastBlockTranslated ? "translated" : "interpreted")} block entered at {_previous.Cs:X4}:{_previous.Eip:X8} " +
                    $"({cpu.DescribeInstructionAt(_previous.Eip)}):\n  interpreter: {expected}\n  translated:  {state}\n  before:      {_previous}";
                cpu.Stop(CpuExit.Stopped, "lockstep divergence");
                return;
            }

            _previous = state;
            Compared++;
            if (cpu.LastBlockTranslated)
            {
                TranslatedCompared++;
            }
        }
    }
}

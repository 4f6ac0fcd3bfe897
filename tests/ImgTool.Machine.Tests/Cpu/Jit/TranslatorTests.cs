using System.Diagnostics;
using ImgTool.Machine.Bus;
using ImgTool.Machine.Cpu;
using ImgTool.Machine.Cpu.Jit;
using ImgTool.Machine.Memory;
using Xunit.Abstractions;

namespace ImgTool.Machine.Tests.Cpu.Jit;

public sealed class TranslatorTests(ITestOutputHelper output)
{
    [Fact]
    public void Handler_table_finds_the_handlers_by_entry_point()
    {
        Assert.True(HandlerTable.Count > 100, $"{HandlerTable.Count} handlers found");
        Assert.True(HandlerTable.Contains(KnownHandlers.AluRR));
    }

    /// <summary>A counted loop (16-bit real mode, 32-bit operands) gives the same result and count on both paths, and the fast one is translated.</summary>
    [Fact]
    public void A_counted_loop_runs_translated_with_the_interpreters_result_and_count()
    {
        // 7000: mov ecx, 3000000 / 7006: add eax, ecx / 7009: dec ecx / jnz 7006 / hlt
        byte[] program = [0x66, 0xB9, 0xC0, 0xC6, 0x2D, 0x00, 0x66, 0x01, 0xC8, 0x66, 0x49, 0x75, 0xF9, 0xF4];
        (X86Cpu interpreted, double interpretedSeconds) = RunLoop(program, JitSettings.Off);
        (X86Cpu translated, double translatedSeconds) = RunLoop(program, new JitSettings(true));
        output.WriteLine($"interpreted {interpretedSeconds:F3} s, translated {translatedSeconds:F3} s; {translated.JitStatistics!.BlocksTranslated} blocks, {translated.JitStatistics.InstructionsTranslated} instructions translated");
        Assert.Equal(interpreted.Instructions, translated.Instructions);
        Assert.Equal(interpreted.R, translated.R);
        Assert.Equal(interpreted.Eflags, translated.Eflags);
        Assert.Equal(interpreted.Eip, translated.Eip);
        Assert.True(translated.JitStatistics.InstructionsTranslated > 8_000_000);
    }

    private static (X86Cpu Cpu, double Seconds) RunLoop(byte[] program, JitSettings jit)
    {
        var memory = new PhysicalMemory(1 << 20);
        var cpu = new X86Cpu(memory, new IoBus(), jit);
        memory.WriteBlock(0x7000, program);
        cpu.S[X86Cpu.CS].Selector = 0;
        cpu.S[X86Cpu.CS].Base = 0;
        cpu.Eip = 0x7000;
        var watch = Stopwatch.StartNew();
        var exit = cpu.Run(20_000_000);
        Assert.Equal(CpuExit.Halted, exit);
        return (cpu, watch.Elapsed.TotalSeconds);
    }
}

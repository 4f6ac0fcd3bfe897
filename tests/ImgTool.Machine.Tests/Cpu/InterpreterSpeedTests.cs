using System.Diagnostics;
using ImgTool.Machine.Cpu;
using ImgTool.Machine.Bus;
using ImgTool.Machine.Memory;
using Xunit.Abstractions;

namespace ImgTool.Machine.Tests.Cpu;

public sealed class InterpreterSpeedTests(ITestOutputHelper output)
{
    [Fact]
    public void A_counted_loop_runs_from_the_decode_cache()
    {
        var memory = new PhysicalMemory(1 << 20);
        var cpu = new X86Cpu(memory, new IoBus());
        var code = cpu.Code;
        // 7000: mov ecx, 3000000 / 7006: add eax, ecx / 7009: dec ecx / jnz 7006 / hlt
        byte[] program = [0x66, 0xB9, 0xC0, 0xC6, 0x2D, 0x00, 0x66, 0x01, 0xC8, 0x66, 0x49, 0x75, 0xF9, 0xF4];
        memory.WriteBlock(0x7000, program);
        cpu.S[X86Cpu.CS].Selector = 0;
        cpu.S[X86Cpu.CS].Base = 0;
        cpu.Eip = 0x7000;
        var warm = Stopwatch.StartNew();
        cpu.Run(1_000_000);
        output.WriteLine($"first million (includes JIT): {warm.Elapsed.TotalSeconds:F3} s");
        var watch = Stopwatch.StartNew();
        long before = cpu.Instructions;
        var exit = cpu.Run(20_000_000);
        watch.Stop();
        output.WriteLine($"{cpu.Instructions - before} instructions in {watch.Elapsed.TotalSeconds:F3} s: {(cpu.Instructions - before) / 1e6 / watch.Elapsed.TotalSeconds:F1} MIPS, {code.BlocksDecoded} decodes");
        Assert.Equal(CpuExit.Halted, exit);
        Assert.Equal(unchecked((uint)(3_000_000UL * 3_000_001UL / 2UL)), cpu.R[X86Cpu.EAX]);
        Assert.True(code.BlocksDecoded < 10, $"{code.BlocksDecoded} blocks decoded: the loop should be decoded once");
    }
}

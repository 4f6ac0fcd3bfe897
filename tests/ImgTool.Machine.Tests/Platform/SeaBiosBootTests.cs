using Xunit.Abstractions;

namespace ImgTool.Machine.Tests.Platform;

/// <summary>Real SeaBIOS (Debian's seabios package, the 128 KiB bios.bin) on the emulated PC.</summary>
public sealed class SeaBiosBootTests(ITestOutputHelper output)
{
    private const string SeaBiosPath = "/usr/share/seabios/bios.bin";

    [Fact]
    public void SeaBios_prints_its_banner_and_finds_no_disk_on_com1()
    {
        Assert.True(File.Exists(SeaBiosPath), $"{SeaBiosPath} is missing: install Debian's 'seabios' package");
        var machine = new PcMachine(new MachineOptions(File.ReadAllBytes(SeaBiosPath), 64u << 20));
        var result = machine.Run(text => text.Contains("No bootable device", StringComparison.Ordinal), 200_000_000, TimeSpan.FromSeconds(60));
        output.WriteLine($"{result}, {result.Instructions / 1e6 / result.WallSeconds:F1} MIPS, {machine.Cpu.Code.BlocksDecoded} decodes");
        output.WriteLine("COM1: " + machine.Serial);
        string log = machine.DebugLog;
        output.WriteLine("debug port: " + log[Math.Max(0, log.Length - 3000)..]);
        Assert.Equal(MachineOutcome.Matched, result.Outcome);
        Assert.Contains("SeaBIOS (version 1.", machine.Serial.ToString(), StringComparison.Ordinal);
    }
}

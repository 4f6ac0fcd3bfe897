using System.Text.RegularExpressions;

namespace ImgTool.Machine.Tests.Platform;

/// <summary>
/// Issue 19 item 11: a boot is a success only when the expected text appeared. A guest that only halted has shown
/// nothing, so without patterns the run ends with the halt as its outcome, never "Success" (it used to be turned
/// into one, and a disk that halts at once looked like a working boot).
/// </summary>
public sealed class BootVerdictTests
{
    private const string SeaBiosPath = "/usr/share/seabios/bios.bin";

    public static TheoryData<byte[], BootOutcome> Halts => new()
    {
        { [0xFA, 0xF4], BootOutcome.HaltedInterruptsOff },           // cli; hlt
        { [0xB0, 0xFF, 0xE6, 0x21, 0xE6, 0xA1, 0xFB, 0xF4], BootOutcome.HaltedNothingToWake }, // mov al, 0xff; out 0x21/0xa1, al (mask every IRQ); sti; hlt
    };

    [Theory]
    [MemberData(nameof(Halts))]
    public void Without_patterns_a_guest_that_only_halts_is_not_a_success(byte[] code, BootOutcome halted)
    {
        BootReport report = BootRunner.Run(new MemoryDisk(BootSector(code)), Settings([]));

        Assert.False(report.Success, report.Diagnosis);
        Assert.Equal(halted, report.Outcome);
    }

    [Fact]
    public void With_a_pattern_that_never_appeared_the_halt_is_the_outcome_and_the_pattern_is_named()
    {
        BootReport report = BootRunner.Run(new MemoryDisk(BootSector([0xFA, 0xF4])), Settings([new Regex("login:")]));

        Assert.False(report.Success);
        Assert.Equal(BootOutcome.HaltedInterruptsOff, report.Outcome);
        Assert.Equal(["login:"], report.MissingPatterns);
    }

    private static BootSettings Settings(IReadOnlyList<Regex> expect)
    {
        Assert.True(File.Exists(SeaBiosPath), $"{SeaBiosPath} is missing: install Debian's 'seabios' package");
        return new BootSettings(File.ReadAllBytes(SeaBiosPath), 64u << 20, expect, 200_000_000, TimeSpan.FromSeconds(60), Translate: false);
    }

    /// <summary>A 1 MiB disk whose boot sector is <paramref name="code"/> and the 0x55AA signature.</summary>
    private static byte[] BootSector(byte[] code)
    {
        byte[] disk = new byte[1 << 20];
        code.CopyTo(disk, 0);
        disk[510] = 0x55;
        disk[511] = 0xAA;
        return disk;
    }
}

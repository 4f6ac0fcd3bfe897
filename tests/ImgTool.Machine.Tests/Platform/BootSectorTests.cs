using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace ImgTool.Machine.Tests.Platform;

/// <summary>
/// SeaBIOS boots fixtures/bootsector/checksum.asm from a virtio-blk disk; the boot sector reads
/// sectors 1-63 through INT 13h and prints their byte sum, which must equal the one computed here.
/// </summary>
public sealed partial class BootSectorTests(ITestOutputHelper output)
{
    private const string SeaBiosPath = "/usr/share/seabios/bios.bin";
    private const int SectorsSummed = 63;

    [Fact]
    public void Int13_checksum_boot_sector_prints_the_checksum_of_the_image()
    {
        byte[] image = new byte[(SectorsSummed + 1) * 512 + 1024 * 1024];
        Assemble().CopyTo(image, 0);
        var random = new Random(1234);
        random.NextBytes(image.AsSpan(512, SectorsSummed * 512));
        uint expected = 0;
        foreach (byte b in image.AsSpan(512, SectorsSummed * 512))
        {
            expected += b;
        }

        var machine = new PcMachine(new MachineOptions(File.ReadAllBytes(SeaBiosPath), 64u << 20, new MemoryDisk(image)));
        var result = machine.Run(text => ChecksumLine().IsMatch(text) || text.Contains("FAILED", StringComparison.Ordinal),
            300_000_000, TimeSpan.FromSeconds(120));
        output.WriteLine($"{result}; sectors read {machine.Disk!.SectorsRead}");
        output.WriteLine(machine.Serial.ToString());
        output.WriteLine(machine.DebugLog);
        Assert.Equal(MachineOutcome.Matched, result.Outcome);
        var match = ChecksumLine().Match(machine.Serial.ToString());
        Assert.True(match.Success, machine.Serial.ToString());
        Assert.Equal(expected.ToString("X8"), match.Groups[1].Value);
    }

    /// <summary>Assembles the fixture with nasm (Debian package 'nasm').</summary>
    internal static byte[] Assemble()
    {
        string source = Path.Combine(TestPaths.RepositoryRoot, "fixtures", "bootsector", "checksum.asm");
        string binary = Path.Combine(Path.GetTempPath(), $"imgtool-checksum-{Environment.ProcessId}.bin");
        var start = new ProcessStartInfo("nasm", ["-f", "bin", "-o", binary, source]) { RedirectStandardError = true };
        using (var nasm = Process.Start(start)!)
        {
            string errors = nasm.StandardError.ReadToEnd();
            nasm.WaitForExit();
            Assert.True(nasm.ExitCode == 0, "nasm failed (install Debian's 'nasm'): " + errors);
        }

        byte[] bytes = File.ReadAllBytes(binary);
        File.Delete(binary);
        Assert.Equal(512, bytes.Length);
        return bytes;
    }

    [GeneratedRegex("CHECKSUM ([0-9A-F]{8})\r\n")]
    private static partial Regex ChecksumLine();
}

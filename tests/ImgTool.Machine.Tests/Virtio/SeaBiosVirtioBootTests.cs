using System.Text.RegularExpressions;
using ImgTool.Machine.Tests.Platform;
using ImgTool.Machine.Virtio;
using Xunit.Abstractions;

namespace ImgTool.Machine.Tests.Virtio;

/// <summary>
/// Real SeaBIOS boots the INT 13h checksum boot sector from virtio-blk through each interface: its
/// driver takes the 1.0 interface when the capabilities are there (transitional, modern-only) and
/// the legacy I/O BAR otherwise, so every path of the device is exercised by a real driver.
/// </summary>
public sealed partial class SeaBiosVirtioBootTests(ITestOutputHelper output)
{
    private const string SeaBiosPath = "/usr/share/seabios/bios.bin";
    private const int SectorsSummed = 63;

    [Theory]
    [InlineData(VirtioPciMode.LegacyOnly, false, 128)]
    [InlineData(VirtioPciMode.LegacyOnly, false, 256)]
    [InlineData(VirtioPciMode.ModernOnly, true, 128)]
    [InlineData(VirtioPciMode.ModernOnly, true, 256)]
    [InlineData(VirtioPciMode.Transitional, true, 128)]
    public void SeaBios_reads_the_disk_through_each_interface(VirtioPciMode mode, bool expectModern, int queueSize)
    {
        byte[] image = new byte[(SectorsSummed + 1) * 512 + (1 << 20)];
        BootSectorTests.Assemble().CopyTo(image, 0);
        new Random(99).NextBytes(image.AsSpan(512, SectorsSummed * 512));
        uint expected = 0;
        foreach (byte b in image.AsSpan(512, SectorsSummed * 512))
        {
            expected += b;
        }

        var machine = new PcMachine(new MachineOptions(File.ReadAllBytes(SeaBiosPath), 64u << 20, new MemoryDisk(image), DiskInterface: mode, DiskOptions: new VirtioBlkOptions(QueueSize: queueSize)));
        var result = machine.Run(text => Checksum().IsMatch(text) || text.Contains("FAILED", StringComparison.Ordinal), 300_000_000, TimeSpan.FromSeconds(120));
        output.WriteLine($"{result}; sectors read {machine.Disk!.SectorsRead}");
        output.WriteLine(machine.DebugLog);
        Assert.Equal(MachineOutcome.Matched, result.Outcome);
        Assert.Equal(expected.ToString("X8"), Checksum().Match(machine.Serial.ToString()).Groups[1].Value);
        Assert.Equal(expectModern, VirtioFeature.Has(machine.Disk.Device.NegotiatedFeatures, VirtioFeature.Version1));
        Assert.False(machine.Disk.Device.Broken);
    }

    [GeneratedRegex("CHECKSUM ([0-9A-F]{8})\r\n")]
    private static partial Regex Checksum();
}

using System.Diagnostics;
using ImgTool.Machine.Tests.Platform;
using ImgTool.Machine.Virtio;
using Xunit.Abstractions;

namespace ImgTool.Machine.Tests.Virtio;

/// <summary>
/// The SYSLINUX fixture (tools/fixtures/make-syslinux-disk.sh) boots to its banner with the disk on
/// each virtio-blk interface: SeaBIOS's legacy driver, its 1.0 driver on a modern-only device, and
/// the 1.0 driver on the transitional default.
/// </summary>
public sealed class SyslinuxVirtioBootTests(ITestOutputHelper output) : IDisposable
{
    private const string SeaBiosPath = "/usr/share/seabios/bios.bin";
    private readonly string _directory = Directory.CreateTempSubdirectory("imgtool-virtio-syslinux-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData(VirtioPciMode.LegacyOnly)]
    [InlineData(VirtioPciMode.ModernOnly)]
    [InlineData(VirtioPciMode.Transitional)]
    public void Syslinux_reaches_its_banner(VirtioPciMode mode)
    {
        string image = Path.Combine(_directory, "syslinux.img");
        string script = Path.Combine(TestPaths.RepositoryRoot, "tools", "fixtures", "make-syslinux-disk.sh");
        var start = new ProcessStartInfo("bash", [script, image]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using (var process = Process.Start(start)!)
        {
            string errors = process.StandardError.ReadToEnd();
            process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, "fixture script failed (tools/test.sh installs syslinux, mtools, dosfstools, fdisk): " + errors);
        }

        var disk = new MemoryDisk(File.ReadAllBytes(image));
        var machine = new PcMachine(new MachineOptions(File.ReadAllBytes(SeaBiosPath), 256u << 20, disk, DiskInterface: mode));
        var result = machine.Run(
            text => text.Contains("SYSLINUX", StringComparison.Ordinal) && text.Contains("bootloader reached", StringComparison.Ordinal),
            2_000_000_000, TimeSpan.FromSeconds(240));
        output.WriteLine($"{result}; sectors read {machine.Disk!.SectorsRead}");
        Assert.True(result.Outcome == MachineOutcome.Matched, $"{result}\n{machine.Serial}");
        Assert.False(machine.Disk.Device.Broken);
        Assert.Equal(mode != VirtioPciMode.LegacyOnly, VirtioFeature.Has(machine.Disk.Device.NegotiatedFeatures, VirtioFeature.Version1));
    }
}

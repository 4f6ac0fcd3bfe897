using System.Diagnostics;
using System.Text.RegularExpressions;

namespace ImgTool.Cli.Tests.Boot;

/// <summary>
/// The Linux fixture under qemu-system-i386 (TCG) with the same SeaBIOS: both bootloaders, over legacy and
/// modern virtio-blk, boot to user space and print the marker and the SHA-256 of the whole disk and of the
/// data partition that this test computes itself from the image file. This pins the fixture (what a real
/// PC makes of it) independently of imgtool's machine, which must then print the same lines.
/// </summary>
/// <remarks>
/// The guest is given a machine like imgtool's: "-cpu pentium2,-apic" is a family-6 P6 part (CMOV, CX8,
/// TSC, FXSR) without a local APIC, so the kernel keeps the 8259 PIC ("APIC: Keep in PIC mode(8259)") as it
/// must on imgtool's PC, which has no APIC; "acpi=off" withholds the ACPI tables, as imgtool's firmware
/// configuration has none, so the kernel finds no power-off method and ends with "reboot: System halted"
/// (interrupts off), imgtool's power-off path. The kernel command line stays "console=ttyS0".
/// </remarks>
[Collection(LinuxFixtureCollection.Name)]
public sealed partial class LinuxQemuInteropTests(LinuxFixture fixture) : IDisposable
{
    private const string Firmware = "/usr/share/seabios/bios.bin";
    private const string LegacyOnly = "disable-modern=on";
    private const string ModernOnly = "disable-legacy=on";

    /// <summary>A run takes 6-9 s here (about 4 s of guest time, the rest is SeaBIOS and the bootloader).</summary>
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    private readonly string _directory = Directory.CreateTempSubdirectory("imgtool-linux-qemu-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    public static TheoryData<string, string> Variants => new()
    {
        { LinuxFixture.Syslinux, LegacyOnly },
        { LinuxFixture.Syslinux, ModernOnly },
        { LinuxFixture.Grub, LegacyOnly },
        { LinuxFixture.Grub, ModernOnly },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task Qemu_boots_the_fixture_and_the_guest_prints_the_hashes_of_its_disk(string bootloader, string transport)
    {
        LinuxFixtureImage image = await fixture.GetAsync(bootloader);

        string serial = await RunQemuAsync(image.Path, transport);

        string tail = Tail(serial);
        Assert.True(serial.Contains(LinuxFixture.Marker, StringComparison.Ordinal), $"no marker on COM1; last lines:\n{tail}");
        Assert.True(LinuxFixture.PrintedHash(serial, "/dev/vda") == image.DiskSha256,
            $"whole-disk hash: expected {image.DiskSha256}, printed {LinuxFixture.PrintedHash(serial, "/dev/vda") ?? "nothing"}; last lines:\n{tail}");
        Assert.True(LinuxFixture.PrintedHash(serial, "/dev/vda2") == image.DataSha256,
            $"data-partition hash: expected {image.DataSha256}, printed {LinuxFixture.PrintedHash(serial, "/dev/vda2") ?? "nothing"}; last lines:\n{tail}");
        Assert.Contains("Kernel command line: BOOT_IMAGE=/vmlinuz console=ttyS0", serial, StringComparison.Ordinal);
        // The transport asked for is the one the guest drove: virtio_pci's modern probe hands a device
        // without virtio 1.0 capabilities to the legacy driver, and says so.
        Assert.Equal(transport == LegacyOnly, serial.Contains("virtio_pci: leaving for legacy driver", StringComparison.Ordinal));
    }

    /// <summary>
    /// Runs QEMU with COM1 on a file until the guest prints its last line or the limit passes, then kills it
    /// (without ACPI the guest halts rather than powering off, so QEMU would not end by itself).
    /// </summary>
    private async Task<string> RunQemuAsync(string image, string transport)
    {
        string log = Path.Combine(_directory, $"qemu-{Guid.NewGuid():N}.log");
        var start = new ProcessStartInfo("qemu-system-i386",
        [
            "-M", "pc,acpi=off", "-cpu", "pentium2,-apic", "-nodefaults", "-display", "none", "-accel", "tcg",
            "-bios", Firmware, "-m", "256",
            "-drive", $"file={image},format=raw,if=none,id=d0,snapshot=on",
            "-device", $"virtio-blk-pci,drive=d0,{transport}",
            "-serial", $"file:{log}",
        ])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        Process qemu;
        try
        {
            qemu = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("qemu-system-i386 is not installed; tools/test.sh installs qemu-system-x86", e);
        }

        using (qemu)
        {
            Task<string> stderr = qemu.StandardError.ReadToEndAsync();
            var deadline = DateTime.UtcNow + Limit;
            string serial = "";
            while (DateTime.UtcNow < deadline && !qemu.HasExited)
            {
                serial = File.Exists(log) ? await File.ReadAllTextAsync(log) : "";
                if (serial.Contains(LinuxFixture.Done, StringComparison.Ordinal))
                {
                    break;
                }

                await Task.Delay(200);
            }

            bool exited = qemu.HasExited;
            if (!exited)
            {
                qemu.Kill();
            }

            await qemu.WaitForExitAsync();
            serial = File.Exists(log) ? await File.ReadAllTextAsync(log) : "";
            Assert.True(serial.Contains(LinuxFixture.Done, StringComparison.Ordinal),
                (exited ? $"qemu-system-i386 exited with {qemu.ExitCode} before the guest finished" : $"the guest did not finish within {Limit.TotalSeconds} s") +
                $"; qemu's stderr: {await stderr}\nlast lines on COM1:\n{Tail(serial)}");
            return serial;
        }
    }

    /// <summary>The last lines of the console, without terminal escapes (GRUB and SeaBIOS clear the screen).</summary>
    internal static string Tail(string serial, int count = 30) =>
        string.Join('\n', Escape().Replace(serial, "").Replace("\r", "", StringComparison.Ordinal).Split('\n').TakeLast(count));

    [GeneratedRegex("\u001b(\\[[0-9;?]*[A-Za-z]|c)")]
    private static partial Regex Escape();
}

using System.Security.Cryptography;
using System.Text.Json;

namespace ImgTool.Cli.Tests.Boot;

/// <summary>
/// Issue 10's "done when": the Linux fixture (tools/fixtures/make-linux-disk.sh) boots on imgtool's machine to
/// user space, and the guest prints the SHA-256 of its whole disk and of its data partition that this test
/// computes from the image file, from raw and from the same image converted by imgtool to every format.
/// </summary>
/// <remarks>
/// Category LinuxBoot: each boot is 8.3 G guest instructions, about a minute of wall time on an idle machine
/// (qemu-system-i386 takes 6-9 s for the same, <see cref="LinuxQemuInteropTests"/>), so tools/test.sh runs
/// only the raw fixture's boots by default and the whole set with IMGTOOL_LINUX_BOOT=1.
/// </remarks>
[Trait("Category", "LinuxBoot")]
[Collection(LinuxFixtureCollection.Name)]
public sealed class LinuxBootTests(LinuxFixture fixture) : IDisposable
{
    /// <summary>
    /// The boot to the hash lines retires 8.3 G instructions: a budget of 12 G bounds a run that goes wrong the
    /// same way on any machine, while the wall-clock limit is only a backstop, so a loaded machine that runs the
    /// guest slowly does not fail a boot that is right.
    /// </summary>
    private const string InstructionBudget = "12000000000";
    private const string Timeout = "3600s";
    private const string Secret = "secret,id=s0,data=linux-fixture";

    private readonly string _directory = Directory.CreateTempSubdirectory("imgtool-linux-boot-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData(LinuxFixture.Syslinux)]
    [InlineData(LinuxFixture.Grub)]
    public async Task Raw_fixture_boots_to_user_space_and_the_guest_hashes_its_disk(string bootloader)
    {
        LinuxFixtureImage image = await fixture.GetAsync(bootloader);

        RunResult result = await BootAsync(["-f", "raw", image.Path], LinuxFixture.Marker, image.DiskHashLine, image.DataHashLine);

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    private static readonly (string Format, string[] Args)[] Conversions =
    [
        ("qcow2", ["-O", "qcow2"]),
        ("qcow2", ["-c", "-O", "qcow2", "-o", "compression_type=zlib"]),
        ("qcow2", ["-c", "-O", "qcow2", "-o", "compression_type=zstd"]),
        ("vmdk", ["-O", "vmdk", "-o", "subformat=monolithicSparse"]),
        ("vmdk", ["-c", "-O", "vmdk", "-o", "subformat=streamOptimized"]),
        ("vhdx", ["-O", "vhdx"]),
    ];

    /// <summary>Every conversion of both bootloader variants: GRUB reads the disk differently from SYSLINUX.</summary>
    public static TheoryData<string, string, string[]> ConvertedFormats
    {
        get
        {
            var data = new TheoryData<string, string, string[]>();
            foreach (string bootloader in new[] { LinuxFixture.Syslinux, LinuxFixture.Grub })
            {
                foreach (var (format, args) in Conversions)
                {
                    data.Add(bootloader, format, args);
                }
            }

            return data;
        }
    }

    public static TheoryData<string> Bootloaders => [LinuxFixture.Syslinux, LinuxFixture.Grub];

    /// <summary>The point of boot-testing a converted image: the guest reads back every byte of the original.</summary>
    [Theory]
    [MemberData(nameof(ConvertedFormats))]
    public async Task Converted_fixture_boots_and_its_guest_prints_the_original_hashes(string bootloader, string format, string[] convertArgs)
    {
        LinuxFixtureImage image = await fixture.GetAsync(bootloader);
        string converted = await ConvertAsync(image, format, convertArgs);

        RunResult result = await BootAsync(["-f", format, converted], LinuxFixture.Marker, image.DiskHashLine, image.DataHashLine);

        Assert.True(result.ExitCode == 0, $"{string.Join(' ', convertArgs)}: {result}");
    }

    /// <summary>
    /// VHD rounds the disk up to its CHS geometry (the footer's current size), so /dev/vda is longer than the
    /// original: only the data partition's hash is comparable.
    /// </summary>
    [Theory]
    [MemberData(nameof(Bootloaders))]
    public async Task Dynamic_vhd_fixture_boots_and_its_guest_prints_the_data_partition_hash(string bootloader)
    {
        LinuxFixtureImage image = await fixture.GetAsync(bootloader);
        string converted = await ConvertAsync(image, "vpc", ["-O", "vpc", "-o", "subformat=dynamic"]);

        RunResult result = await BootAsync(["-f", "vpc", converted], LinuxFixture.Marker, image.DataHashLine);

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    /// <summary>
    /// A qcow2 overlay that imgtool converted with -B over a raw base holds only the data partition; the
    /// kernel, the initramfs and the partition table come from the base through the backing chain.
    /// </summary>
    [Theory]
    [MemberData(nameof(Bootloaders))]
    public async Task Qcow2_overlay_over_a_raw_base_boots_with_the_original_hashes(string bootloader)
    {
        LinuxFixtureImage image = await fixture.GetAsync(bootloader);
        // The base: the fixture with its data partition zeroed; the source: a qcow2 overlay of it holding the data.
        string baseImage = LinuxFixture.CopyTo(image, _directory);
        await using (var stream = new FileStream(baseImage, FileMode.Open, FileAccess.Write))
        {
            stream.Position = image.DataOffsetBytes;
            stream.Write(new byte[image.DataLengthBytes]);
        }

        string data = Path.Combine(_directory, "data.bin");
        await using (var source = File.OpenRead(image.Path))
        await using (var target = File.Create(data))
        {
            source.Position = image.DataOffsetBytes;
            byte[] bytes = new byte[image.DataLengthBytes];
            await source.ReadExactlyAsync(bytes);
            await target.WriteAsync(bytes);
        }

        string top = Path.Combine(_directory, "top.qcow2");
        RunResult create = await Tools.QemuImg("create", "-q", "-f", "qcow2", "-b", baseImage, "-F", "raw", top);
        Assert.True(create.ExitCode == 0, create.ToString());
        RunResult write = await Tools.Qemu("qemu-io", "-f", "qcow2", "-c", $"write -s {data} {image.DataOffsetBytes} {image.DataLengthBytes}", top);
        Assert.True(write.ExitCode == 0, write.ToString());

        string overlay = Path.Combine(_directory, "overlay.qcow2");
        RunResult convert = await Tools.Imgtool("convert", "-f", "qcow2", "-O", "qcow2", "-B", baseImage, "-F", "raw", top, overlay);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.True(new FileInfo(overlay).Length < image.DataLengthBytes * 2, "the overlay should hold little more than the data partition");

        RunResult result = await BootAsync(["-f", "qcow2", overlay], LinuxFixture.Marker, image.DiskHashLine, image.DataHashLine);

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Theory]
    [MemberData(nameof(Bootloaders))]
    public async Task Luks_encrypted_qcow2_fixture_boots_with_the_original_hashes(string bootloader)
    {
        LinuxFixtureImage image = await fixture.GetAsync(bootloader);
        string encrypted = Path.Combine(_directory, "encrypted.qcow2");
        RunResult convert = await Tools.Imgtool("convert", "--object", Secret, "-f", "raw", "-O", "qcow2",
            "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10", image.Path, encrypted);
        Assert.True(convert.ExitCode == 0, convert.ToString());

        RunResult result = await BootAsync(
            ["--object", Secret, "--image-opts", $"driver=qcow2,file.filename={encrypted},encrypt.key-secret=s0"],
            LinuxFixture.Marker, image.DiskHashLine, image.DataHashLine);

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    /// <summary>Virtual time comes from retired instructions: two runs retire the same count at the marker.</summary>
    [Fact]
    public async Task Two_boots_retire_the_same_instruction_count_at_the_marker()
    {
        LinuxFixtureImage image = await fixture.GetAsync(LinuxFixture.Syslinux);

        long[] counts = new long[2];
        for (int run = 0; run < counts.Length; run++)
        {
            RunResult result = await BootAsync(["-f", "raw", image.Path, "--output", "json"], LinuxFixture.Marker);
            Assert.True(result.ExitCode == 0, result.ToString());
            JsonElement report = JsonDocument.Parse(result.Out).RootElement;
            Assert.Equal("PatternsMatched", report.GetProperty("end-reason").GetString());
            counts[run] = report.GetProperty("instructions").GetInt64();
        }

        Assert.True(counts[0] > 1_000_000_000, $"{counts[0]} instructions to Linux user space is too few to be a real boot");
        Assert.Equal(counts[0], counts[1]);
    }

    /// <summary>
    /// The data partition changed after conversion: the guest prints the hash of what it reads (not the
    /// original's), and imgtool boot fails, naming the expected line it did not see.
    /// </summary>
    [Fact]
    public async Task A_data_partition_changed_after_conversion_prints_another_hash_and_the_boot_fails_naming_it()
    {
        LinuxFixtureImage image = await fixture.GetAsync(LinuxFixture.Syslinux);
        string converted = await ConvertAsync(image, "qcow2", ["-O", "qcow2"]);
        const int ChangedOffset = 4096;
        const int ChangedLength = 4096;
        const byte Pattern = 0x5A;
        RunResult write = await Tools.Qemu("qemu-io", "-f", "qcow2", "-c",
            $"write -P 0x{Pattern:x2} {image.DataOffsetBytes + ChangedOffset} {ChangedLength}", converted);
        Assert.True(write.ExitCode == 0, write.ToString());
        string expectedChanged = ChangedDataHash(image, ChangedOffset, ChangedLength, Pattern);
        string serialLog = Path.Combine(_directory, "changed.log");

        RunResult result = await BootAsync(["-f", "qcow2", converted, "--serial-log", serialLog], LinuxFixture.Marker, image.DataHashLine);

        Assert.True(result.ExitCode == 1, result.ToString());
        // The marker appeared; only the original hash line is missing, and it is named.
        Assert.True(result.Out.Contains($"\nexpected on COM1 but not seen: '{image.DataHashLine}'\n", StringComparison.Ordinal), result.ToString());
        string serial = await File.ReadAllTextAsync(serialLog);
        Assert.True(LinuxFixture.PrintedHash(serial, "/dev/vda2") == expectedChanged,
            $"the guest should print the changed partition's hash {expectedChanged}; last lines:\n{LinuxQemuInteropTests.Tail(serial)}");
    }

    private static string ChangedDataHash(LinuxFixtureImage image, int offset, int length, byte pattern)
    {
        using var stream = File.OpenRead(image.Path);
        byte[] data = new byte[image.DataLengthBytes];
        stream.Position = image.DataOffsetBytes;
        stream.ReadExactly(data);
        data.AsSpan(offset, length).Fill(pattern);
        return Convert.ToHexStringLower(SHA256.HashData(data));
    }

    private async Task<string> ConvertAsync(LinuxFixtureImage image, string format, string[] convertArgs)
    {
        string converted = Path.Combine(_directory, $"converted-{Guid.NewGuid():N}.{format}");
        RunResult convert = await Tools.Imgtool(["convert", "-f", "raw", .. convertArgs, image.Path, converted]);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        return converted;
    }

    /// <summary>imgtool boot with the image arguments, one --expect per line, and Linux-sized limits.</summary>
    private static Task<RunResult> BootAsync(string[] imageArgs, params string[] expectedLines)
    {
        var args = new List<string> { "boot" };
        args.AddRange(imageArgs);
        foreach (string line in expectedLines)
        {
            // The lines hold no regular-expression metacharacters: each pattern is the line itself, and the
            // failure report names it as written.
            args.AddRange(["--expect", line]);
        }

        args.AddRange(["--max-instructions", InstructionBudget, "--timeout", Timeout]);
        return Tools.Imgtool([.. args]);
    }
}

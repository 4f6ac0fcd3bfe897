using System.Buffers.Binary;
using System.Text.Json;
using ImgTool.Inspect.Inspection;

namespace ImgTool.Inspect.Tests;

/// <summary>A failed `imgtool boot` names the disk's layout, so "no bootable disk" says what is missing.</summary>
public sealed class BootLayoutTests
{
    [Fact]
    public async Task A_whole_disk_file_system_that_cannot_boot_is_named_in_the_boot_report()
    {
        using var dir = new TempDir();
        string image = dir.File("ext4.img");
        await HostTools.Run("truncate", "-s", "16M", image);
        await HostTools.Run("mke2fs", "-q", "-t", "ext4", image);
        RunResult human = await HostTools.Imgtool("boot", "-f", "raw", image, "--timeout", "60s");
        Assert.Equal(1, human.ExitCode);
        string[] lines = human.Out.Split('\n');
        Assert.Equal("boot failed: the firmware found no bootable disk", lines[0]);
        Assert.Contains("disk layout: no partition table; the whole disk is ext4, with no 0x55AA boot signature", lines);
        RunResult json = await HostTools.Imgtool("boot", "-f", "raw", image, "--timeout", "60s", "--output", "json");
        using var report = JsonDocument.Parse(json.Out);
        Assert.Equal("NoBootableDisk", report.RootElement.GetProperty("end-reason").GetString());
        Assert.Equal("no partition table; the whole disk is ext4, with no 0x55AA boot signature", report.RootElement.GetProperty("disk-layout").GetString());
    }

    [Fact]
    public async Task An_mbr_without_an_active_partition_or_boot_code_says_so()
    {
        byte[] disk = new byte[8 << 20];
        Span<byte> entry = disk.AsSpan(446, 16);
        entry[4] = 0x83;
        BinaryPrimitives.WriteUInt32LittleEndian(entry[8..], 2048);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[12..], 8192);
        disk[510] = 0x55;
        disk[511] = 0xAA;
        string line = await LayoutSummary.DescribeAsync(new MemoryDevice(disk), "x.img", CancellationToken.None);
        Assert.Equal("dos partition table, 1 partition: 1 unknown; no partition is marked bootable; MBR boot code: none (all zeros)", line);
    }
}

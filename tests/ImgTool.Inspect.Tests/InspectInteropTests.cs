using System.Globalization;
using System.Text.Json;

namespace ImgTool.Inspect.Tests;

/// <summary>`imgtool inspect` against `sfdisk --json` (the table and every partition) and `blkid -p` (every file
/// system's TYPE, USAGE, LABEL, UUID, UUID_SUB, VERSION, BLOCK_SIZE) on disks made by Debian's tools, read as raw and
/// after qemu-img converted them to qcow2 and vmdk.</summary>
public sealed class InspectInteropTests(ProbeDisks disks) : IClassFixture<ProbeDisks>
{
    /// <summary>blkid's field and the key of imgtool's JSON file system object that must carry the same value.</summary>
    private static readonly (string Blkid, string Json)[] ComparedFields =
    [
        ("TYPE", "type"), ("USAGE", "usage"), ("LABEL", "label"), ("UUID", "uuid"), ("UUID_SUB", "uuid-sub"), ("VERSION", "version"), ("BLOCK_SIZE", "block-size"),
    ];

    [Theory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    [InlineData("vmdk")]
    [InlineData("vdi")]
    [InlineData("vhdx")]
    public async Task Gpt_disk_agrees_with_sfdisk_and_blkid(string format) =>
        await AssertAgreesAsync(disks.Gpt, ProbeDisks.Converted(disks.Gpt, format), ProbeDisks.GptCases.Length);

    [Theory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    [InlineData("vmdk")]
    [InlineData("vdi")]
    [InlineData("vhdx")]
    public async Task Mbr_disk_with_logical_partitions_agrees_with_sfdisk_and_blkid(string format) =>
        await AssertAgreesAsync(disks.Mbr, ProbeDisks.Converted(disks.Mbr, format), ProbeDisks.MbrCases.Length);

    [Fact]
    public async Task A_qcow2_overlay_is_read_through_its_backing_chain()
    {
        using var dir = new TempDir();
        string overlay = dir.File("overlay.qcow2");
        await HostTools.Run("qemu-img", "create", "-f", "qcow2", "-b", disks.Mbr, "-F", "raw", overlay);
        await AssertAgreesAsync(disks.Mbr, overlay, ProbeDisks.MbrCases.Length);
    }

    [Fact]
    public async Task Every_gpt_case_was_recognised()
    {
        JsonElement mine = await HostTools.InspectJson(disks.Gpt);
        string[] types = mine.GetProperty("volumes").EnumerateArray().Select(v => v.GetProperty("filesystem").GetProperty("type").GetString()!).ToArray();
        Assert.Equal(["ext2", "ext3", "ext4", "ext4", "ext4", "xfs", "btrfs", "vfat", "vfat", "vfat", "vfat", "exfat", "ntfs", "swap", "crypto_LUKS", "crypto_LUKS", "iso9660"], types);
    }

    [Theory]
    [InlineData("header")]
    [InlineData("entries")]
    public async Task Corrupt_primary_gpt_is_reported_and_the_backup_used(string what)
    {
        using var dir = new TempDir();
        string raw = dir.File("bad.img");
        File.Copy(disks.Gpt, raw);
        using (var file = new FileStream(raw, FileMode.Open))
        {
            // A byte of the header's disk GUID (LBA 1, byte 56), or of the first entry's name (the array at LBA 2).
            file.Position = what == "header" ? 512 + 60 : 1024 + 60;
            int b = file.ReadByte();
            file.Position--;
            file.WriteByte((byte)(b ^ 0x5A));
        }

        RunResult sfdisk = await HostTools.Run("sfdisk", "--json", raw);
        Assert.Contains("The primary GPT table is corrupt, but the backup appears OK", sfdisk.Err + sfdisk.Out, StringComparison.Ordinal);
        await HostTools.Run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, dir.File("bad.qcow2"));
        foreach (string image in new[] { raw, dir.File("bad.qcow2") })
        {
            JsonElement mine = await HostTools.InspectJson(image);
            JsonElement table = mine.GetProperty("partition-table");
            Assert.True(table.GetProperty("used-backup").GetBoolean());
            Assert.False(table.GetProperty("primary-header").GetProperty("valid").GetBoolean());
            Assert.Contains(what == "header" ? "header CRC32 mismatch" : "entry array CRC32 mismatch", table.GetProperty("primary-header").GetProperty("problem").GetString(), StringComparison.Ordinal);
            Assert.True(table.GetProperty("backup-header").GetProperty("valid").GetBoolean());
            Assert.Contains(mine.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.Contains("primary GPT header is corrupt", StringComparison.Ordinal));
            RunResult human = await HostTools.Imgtool("inspect", image);
            Assert.Contains("primary (LBA 1) corrupt", human.Out, StringComparison.Ordinal);
        }

        await AssertAgreesAsync(raw, raw, ProbeDisks.GptCases.Length);
    }

    [Fact]
    public async Task Hybrid_mbr_is_flagged()
    {
        using var dir = new TempDir();
        string raw = dir.File("hybrid.img");
        File.Copy(disks.Gpt, raw);
        JsonElement before = await HostTools.InspectJson(raw);
        Assert.False(before.GetProperty("partition-table").GetProperty("hybrid-mbr").GetBoolean());
        await HostTools.Run("sgdisk", "-h", "8:9", raw);
        JsonElement after = await HostTools.InspectJson(raw);
        Assert.True(after.GetProperty("partition-table").GetProperty("hybrid-mbr").GetBoolean());
        Assert.Equal("gpt", after.GetProperty("partition-table").GetProperty("label").GetString());
    }

    private static async Task AssertAgreesAsync(string raw, string image, int filesystems)
    {
        JsonElement mine = await HostTools.InspectJson(image);
        using JsonDocument sfdiskDoc = JsonDocument.Parse((await HostTools.Run("sfdisk", "--json", raw)).Out);
        JsonElement theirs = sfdiskDoc.RootElement.GetProperty("partitiontable");
        JsonElement table = mine.GetProperty("partition-table");
        Assert.Equal(theirs.GetProperty("label").GetString(), table.GetProperty("label").GetString());
        Assert.Equal(theirs.GetProperty("id").GetString(), table.GetProperty("id").GetString());
        Assert.Equal(theirs.GetProperty("sectorsize").GetInt32(), table.GetProperty("sector-size").GetInt32());
        foreach (string field in new[] { "firstlba", "lastlba" })
        {
            if (theirs.TryGetProperty(field, out JsonElement value))
            {
                Assert.Equal(value.GetInt64(), table.GetProperty(field.Replace("lba", "-lba", StringComparison.Ordinal)).GetInt64());
            }
        }

        string device = theirs.GetProperty("device").GetString()!;
        JsonElement[] volumes = mine.GetProperty("volumes").EnumerateArray().ToArray();
        JsonElement[] partitions = theirs.GetProperty("partitions").EnumerateArray().ToArray();
        Assert.Equal(partitions.Length, volumes.Length);
        int probed = 0;
        foreach (JsonElement p in partitions)
        {
            int number = int.Parse(p.GetProperty("node").GetString()![device.Length..], CultureInfo.InvariantCulture);
            JsonElement v = volumes.Single(x => x.GetProperty("number").GetInt32() == number);
            string at = $"{image} partition {number}";
            Assert.True(p.GetProperty("start").GetInt64() == v.GetProperty("start").GetInt64(), at);
            Assert.True(p.GetProperty("size").GetInt64() == v.GetProperty("size").GetInt64(), at);
            Assert.Equal(p.GetProperty("type").GetString(), v.GetProperty("type").GetString());
            Assert.Equal(Optional(p, "uuid"), Optional(v, "uuid"));
            Assert.Equal(Optional(p, "name"), Optional(v, "name"));
            Assert.Equal(p.TryGetProperty("bootable", out JsonElement boot) && boot.GetBoolean(), v.TryGetProperty("bootable", out JsonElement mineBoot) && mineBoot.GetBoolean());
            if (v.TryGetProperty("extended", out _))
            {
                continue;
            }

            Dictionary<string, string> blkid = await HostTools.Blkid(raw, v.GetProperty("offset-bytes").GetInt64(), v.GetProperty("size-bytes").GetInt64());
            Assert.True(blkid.ContainsKey("TYPE"), $"{at}: blkid found nothing");
            JsonElement fs = v.GetProperty("filesystem");
            foreach (var (blkidKey, jsonKey) in ComparedFields)
            {
                string? expected = blkid.GetValueOrDefault(blkidKey);
                string? actual = fs.TryGetProperty(jsonKey, out JsonElement value) ? value.ToString() : null;
                Assert.True(expected == actual, $"{at} ({blkid["TYPE"]}): {blkidKey} is '{expected}' for blkid, '{jsonKey}' is '{actual}' for imgtool");
            }

            probed++;
        }

        Assert.Equal(filesystems, probed);
    }

    private static string? Optional(JsonElement element, string name) =>
        element.TryGetProperty(name, out JsonElement value) ? value.GetString() : null;
}

using System.Buffers.Binary;
using System.Text.Json;
using static ImgTool.Cli.Tests.Interop.BigEndianPatch;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>Hand-damaged qcow2 images: imgtool check gives qemu-img check's diagnosis (same counts, same
/// exit code), and after imgtool check -r all, qemu-img check agrees with what is left.</summary>
public sealed class Qcow2CorruptionTests : IDisposable
{
    private const int ClusterSize = 65536;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public enum Damage
    {
        LeakedCluster,
        RefcountTooLow,
        RefcountTooHigh,
        L2EntryPastEndOfFile,
        L2EntryOverlapsL1Table,
        TruncatedFile,
        CopiedFlagMissingOnDataCluster,
        CopiedFlagMissingOnL2Table,
        CopiedFlagSetOnSharedCluster,
    }

    [Theory]
    [InlineData(Damage.LeakedCluster, 3)]
    [InlineData(Damage.RefcountTooLow, 2)]
    [InlineData(Damage.RefcountTooHigh, 2)]
    [InlineData(Damage.L2EntryPastEndOfFile, 2)]
    [InlineData(Damage.L2EntryOverlapsL1Table, 2)]
    [InlineData(Damage.TruncatedFile, 2)]
    [InlineData(Damage.CopiedFlagMissingOnDataCluster, 2)]
    [InlineData(Damage.CopiedFlagMissingOnL2Table, 2)]
    [InlineData(Damage.CopiedFlagSetOnSharedCluster, 2)]
    public async Task Check_diagnoses_and_repairs_like_qemu_img(Damage damage, int exitCode)
    {
        string ours = await DamagedImageAsync(damage, "ours.qcow2");
        string theirs = _dir.File("theirs.qcow2");
        File.Copy(ours, theirs);

        RunResult qemuCheck = await QemuImg("check", "--output=json", theirs);
        RunResult ourCheck = await Imgtool("check", "--output=json", ours);
        Assert.Equal(exitCode, qemuCheck.ExitCode);
        Assert.True(ourCheck.ExitCode == exitCode, ourCheck.ToString());
        using (JsonDocument q = JsonDocument.Parse(qemuCheck.Out))
        using (JsonDocument o = JsonDocument.Parse(ourCheck.Out))
        {
            foreach (string field in new[] { "leaks", "corruptions", "check-errors", "image-end-offset", "allocated-clusters" })
            {
                Assert.Equal(q.RootElement.TryGetProperty(field, out JsonElement a) ? a.ToString() : "-", o.RootElement.TryGetProperty(field, out JsonElement b) ? b.ToString() : "-");
            }
        }

        int qemuRepaired = (await QemuImg("check", "-r", "all", theirs)).ExitCode;
        int ourRepaired = (await Imgtool("check", "-r", "all", ours)).ExitCode;
        Assert.Equal(qemuRepaired, ourRepaired);
        Assert.Equal(qemuRepaired, (await QemuImg("check", ours)).ExitCode);
    }

    [Fact]
    public async Task Leaks_alone_are_repaired_by_r_leaks()
    {
        string image = await DamagedImageAsync(Damage.LeakedCluster, "leak.qcow2");
        RunResult repaired = await Imgtool("check", "-r", "leaks", image);
        Assert.True(repaired.ExitCode == 0, repaired.ToString());
        Assert.Contains("1 leaked clusters", repaired.Out, StringComparison.Ordinal);
        Assert.Equal(0, (await QemuImg("check", image)).ExitCode);
    }

    [Fact]
    public async Task A_backing_file_offset_with_an_empty_name_means_no_backing_file()
    {
        string image = _dir.File("empty-backing.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", image, "16M")).ExitCode);
        await PatchAsync(image, 8, 512, 8); // backing_file_offset = 512, backing_file_size stays 0
        foreach (string[] args in new[] { new[] { "info", image }, ["info", "--output=json", image], ["map", "--output=json", image], ["check", image] })
        {
            RunResult theirs = await QemuImg(args);
            RunResult ours = await Imgtool(args);
            Assert.True(ours.ExitCode == theirs.ExitCode, ours.ToString());
            Assert.Equal(theirs.Out, ours.Out);
        }
    }

    [Theory]
    [InlineData(36, 0x7fffffffL, 4, "L1 table is too large")]
    [InlineData(72, 1L << 40, 8, "unknown incompatible feature bit 40")]
    [InlineData(4, 9L, 4, "version 9")]
    [InlineData(20, 40L, 4, "cluster_bits")]
    [InlineData(56, 0x7fffffffL, 4, "refcount table")]
    [InlineData(60, 0x7fffffffL, 4, "too many snapshots")]
    public async Task Hostile_headers_are_refused_with_a_clear_message(int offset, long value, int width, string message)
    {
        string image = _dir.File("hostile.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", image, "16M")).ExitCode);
        await PatchAsync(image, offset, value, width);
        RunResult info = await Imgtool("info", image);
        Assert.Equal(1, info.ExitCode);
        Assert.Contains(message, info.Err, StringComparison.Ordinal);
        Assert.Single(info.Err.Trim().Split('\n'));
        Assert.Equal(1, (await QemuImg("info", image)).ExitCode);
    }

    private async Task<string> DamagedImageAsync(Damage damage, string name)
    {
        string image = _dir.File(name);
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", image, "16M")).ExitCode);
        Assert.Equal(0, (await Qemu("qemu-io", "-c", "write -P 1 0 3M", image)).ExitCode);
        if (damage == Damage.CopiedFlagSetOnSharedCluster)
        {
            // The snapshot shares every cluster (refcount 2), so qemu-img clears the active entries' COPIED bits.
            Assert.Equal(0, (await QemuImg("snapshot", "-c", "s1", image)).ExitCode);
        }

        byte[] header = new byte[104];
        await using (var stream = File.OpenRead(image))
        {
            await stream.ReadExactlyAsync(header);
        }

        long l1Offset = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(40));
        long refcountTable = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(48));
        long refcountBlock = await ReadAsync(image, refcountTable, 8);
        long l2 = await ReadAsync(image, l1Offset, 8) & 0x00ff_ffff_ffff_fe00L;
        long l1Entry = await ReadAsync(image, l1Offset, 8);
        long dataEntry = await ReadAsync(image, l2, 8);
        long data = dataEntry & 0x00ff_ffff_ffff_fe00L;
        long length = new FileInfo(image).Length;
        switch (damage)
        {
            case Damage.LeakedCluster:
                long cluster = length / ClusterSize;
                await using (var stream = new FileStream(image, FileMode.Open))
                {
                    stream.SetLength((cluster + 1) * ClusterSize);
                }

                await PatchAsync(image, refcountBlock + (2 * cluster), 1, 2);
                break;
            case Damage.RefcountTooLow:
                await PatchAsync(image, refcountBlock + (2 * (data / ClusterSize)), 0, 2);
                break;
            case Damage.RefcountTooHigh:
                await PatchAsync(image, refcountBlock + (2 * (data / ClusterSize)), 2, 2);
                break;
            case Damage.L2EntryPastEndOfFile:
                await PatchAsync(image, l2 + 8, long.MinValue | (length * 4 / ClusterSize * ClusterSize), 8);
                break;
            case Damage.L2EntryOverlapsL1Table:
                await PatchAsync(image, l2 + 8, long.MinValue | l1Offset, 8);
                break;
            case Damage.TruncatedFile:
                await using (var stream = new FileStream(image, FileMode.Open))
                {
                    stream.SetLength(length / 2);
                }

                break;
            case Damage.CopiedFlagMissingOnDataCluster:
                Assert.True(dataEntry < 0, "qemu-io's data cluster should have COPIED set");
                await PatchAsync(image, l2, dataEntry & long.MaxValue, 8);
                break;
            case Damage.CopiedFlagMissingOnL2Table:
                Assert.True(l1Entry < 0, "qemu-io's L2 table should have COPIED set");
                await PatchAsync(image, l1Offset, l1Entry & long.MaxValue, 8);
                break;
            case Damage.CopiedFlagSetOnSharedCluster:
                Assert.True(dataEntry > 0, "a cluster shared with a snapshot must not have COPIED set");
                await PatchAsync(image, l2, dataEntry | long.MinValue, 8);
                break;
        }

        return image;
    }
}

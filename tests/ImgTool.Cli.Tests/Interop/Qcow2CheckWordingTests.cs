using System.Buffers.Binary;
using System.Text.Json;
using static ImgTool.Cli.Tests.Interop.BigEndianPatch;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// imgtool check on a damaged qcow2 prints qemu-img check's lines, word for word and in its order: what it found
/// ("ERROR cluster 5 refcount=0 reference=1", "Leaked cluster 53 ..."), what a repair changed ("Repairing cluster
/// ...", "Rebuilding refcount structure", "Repairing OFLAG_COPIED ..."), and the summaries; and the JSON names the
/// structure each finding is about. Both tools run on copies of the same damaged image.
/// </summary>
public sealed class Qcow2CheckWordingTests : IDisposable
{
    private const int ClusterSize = 65536;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public enum Damage
    {
        RefcountZeroOnDataCluster,
        RefcountTooHighOnDataCluster,
        RefcountZeroOnRefcountBlock,
        RefcountZeroOnL2Table,
        LeakedCluster,
        L2EntryPastEndOfFile,
        L2EntryOverlapsL1Table,
        UnalignedDataCluster,
        CopiedMissingOnDataCluster,
        CopiedMissingOnL2Table,
        RefcountTooLowOnSharedCluster,
    }

    public static TheoryData<Damage, string> Cases()
    {
        var data = new TheoryData<Damage, string>();
        foreach (Damage damage in Enum.GetValues<Damage>())
        {
            foreach (string mode in new[] { "none", "leaks", "all" })
            {
                data.Add(damage, mode);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Check_prints_qemu_imgs_lines(Damage damage, string mode)
    {
        string damaged = await DamagedImageAsync(damage);
        string[] repair = mode == "none" ? [] : ["-r", mode];
        string theirs = _dir.File($"theirs-{mode}.qcow2");
        string ours = _dir.File($"ours-{mode}.qcow2");
        File.Copy(damaged, theirs);
        File.Copy(damaged, ours);

        RunResult q = await QemuImg(["check", .. repair, theirs]);
        RunResult o = await Imgtool(["check", .. repair, ours]);

        Assert.True(q.ExitCode == o.ExitCode, $"qemu-img:\n{q}\nimgtool:\n{o}");
        Assert.Equal(q.Out, o.Out);
        Assert.Equal(Comparable(q.Err, "qemu-img", theirs), Comparable(o.Err, "imgtool", ours));
    }

    [Theory]
    [InlineData(Damage.RefcountZeroOnDataCluster, "data cluster", "corruption", "cluster 5 refcount=0 reference=1")]
    [InlineData(Damage.RefcountZeroOnRefcountBlock, "refcount block", "corruption", "cluster 2 refcount=0 reference=1")]
    [InlineData(Damage.RefcountZeroOnL2Table, "L2 table", "corruption", "cluster 4 refcount=0 reference=1")]
    [InlineData(Damage.LeakedCluster, "unreferenced cluster", "leak", "cluster 53 refcount=1 reference=0")]
    [InlineData(Damage.RefcountTooHighOnDataCluster, "data cluster", "leak", "cluster 5 refcount=2 reference=1")]
    public async Task Json_names_what_the_finding_is_about(Damage damage, string structure, string severity, string message)
    {
        string image = await DamagedImageAsync(damage);
        RunResult check = await Imgtool("check", "--output=json", image);
        using JsonDocument json = JsonDocument.Parse(check.Out);
        JsonElement finding = json.RootElement.GetProperty("findings").EnumerateArray()
            .Single(f => f.GetProperty("message").GetString() == message);
        Assert.Equal(structure, finding.GetProperty("structure").GetString());
        Assert.Equal(severity, finding.GetProperty("severity").GetString());
    }

    [Theory]
    [InlineData(Damage.LeakedCluster, "leaks", new[] { "Repairing cluster 53 refcount=1 reference=0" }, 1, 0)]
    [InlineData(Damage.RefcountZeroOnDataCluster, "all", new[] { "Rebuilding refcount structure", "Repairing cluster 1 refcount=1 reference=0", "Repairing cluster 2 refcount=1 reference=0" }, 0, 1)]
    [InlineData(Damage.CopiedMissingOnDataCluster, "all", new[] { "Repairing OFLAG_COPIED data cluster: l2_entry=50000 refcount=1" }, 0, 1)]
    public async Task Json_says_what_was_repaired(Damage damage, string mode, string[] repairs, int leaksFixed, int corruptionsFixed)
    {
        string image = await DamagedImageAsync(damage);
        string theirs = _dir.File("theirs-json.qcow2");
        File.Copy(image, theirs);
        RunResult check = await Imgtool("check", "-r", mode, "--output=json", image);
        RunResult q = await QemuImg("check", "-r", mode, "--output=json", theirs);
        Assert.Equal(q.ExitCode, check.ExitCode);
        using JsonDocument json = JsonDocument.Parse(check.Out);
        using JsonDocument qemu = JsonDocument.Parse(q.Out);
        Assert.Equal(repairs, json.RootElement.GetProperty("repairs").EnumerateArray().Select(r => r.GetProperty("message").GetString()!).ToArray());
        Assert.Equal(qemu.RootElement.TryGetProperty("leaks-fixed", out JsonElement l) ? l.GetInt32() : 0, leaksFixed);
        Assert.Equal(qemu.RootElement.TryGetProperty("corruptions-fixed", out JsonElement c) ? c.GetInt32() : 0, corruptionsFixed);
        Assert.Equal(leaksFixed, json.RootElement.TryGetProperty("leaks-fixed", out JsonElement ol) ? ol.GetInt32() : 0);
        Assert.Equal(corruptionsFixed, json.RootElement.TryGetProperty("corruptions-fixed", out JsonElement oc) ? oc.GetInt32() : 0);
    }

    /// <summary>stderr with the tool's name and the file name taken off; qemu-img's "Check failed" names only the
    /// errno, imgtool adds why.</summary>
    private static string[] Comparable(string stderr, string tool, string path) => stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Select(line => line.Replace($"{tool}: ", string.Empty, StringComparison.Ordinal).Replace($"{path}: ", string.Empty, StringComparison.Ordinal))
        .Select(line => line.StartsWith("Check failed: Input/output error", StringComparison.Ordinal) ? "Check failed: Input/output error" : line)
        .ToArray();

    /// <summary>A 16 MiB qcow2 with 3 MiB written by qemu-io (clusters 0..52: header, refcount table, refcount block,
    /// L1, L2, then data from cluster 5), damaged by editing bytes.</summary>
    private async Task<string> DamagedImageAsync(Damage damage)
    {
        string image = _dir.File($"{damage}.qcow2");
        if (File.Exists(image))
        {
            return image;
        }

        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", image, "16M")).ExitCode);
        Assert.Equal(0, (await Qemu("qemu-io", "-c", "write -P 1 0 3M", image)).ExitCode);
        if (damage == Damage.RefcountTooLowOnSharedCluster)
        {
            Assert.Equal(0, (await QemuImg("snapshot", "-c", "s1", image)).ExitCode);
        }

        byte[] header = new byte[104];
        await using (var stream = File.OpenRead(image))
        {
            await stream.ReadExactlyAsync(header);
        }

        long l1Offset = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(40));
        long refcountTable = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(48));
        long refcountBlock = await ReadAsync(image, refcountTable);
        long l1Entry = await ReadAsync(image, l1Offset);
        long l2 = l1Entry & 0x00ff_ffff_ffff_fe00L;
        long dataEntry = await ReadAsync(image, l2);
        long data = dataEntry & 0x00ff_ffff_ffff_fe00L;
        long length = new FileInfo(image).Length;
        long RefcountOf(long offset) => refcountBlock + (2 * (offset / ClusterSize));
        switch (damage)
        {
            case Damage.RefcountZeroOnDataCluster:
                await PatchAsync(image, RefcountOf(data), 0, 2);
                break;
            case Damage.RefcountTooHighOnDataCluster:
                await PatchAsync(image, RefcountOf(data), 2, 2);
                break;
            case Damage.RefcountZeroOnRefcountBlock:
                await PatchAsync(image, RefcountOf(refcountBlock), 0, 2);
                break;
            case Damage.RefcountZeroOnL2Table:
                await PatchAsync(image, RefcountOf(l2), 0, 2);
                break;
            case Damage.LeakedCluster:
                await using (var stream = new FileStream(image, FileMode.Open))
                {
                    stream.SetLength(length + ClusterSize);
                }

                await PatchAsync(image, RefcountOf(length), 1, 2);
                break;
            case Damage.L2EntryPastEndOfFile:
                await PatchAsync(image, l2 + 8, long.MinValue | (length * 4 / ClusterSize * ClusterSize), 8);
                break;
            case Damage.L2EntryOverlapsL1Table:
                await PatchAsync(image, l2 + 8, long.MinValue | l1Offset, 8);
                break;
            case Damage.UnalignedDataCluster:
                await PatchAsync(image, l2 + 16, long.MinValue | (data + 512), 8);
                break;
            case Damage.CopiedMissingOnDataCluster:
                await PatchAsync(image, l2, dataEntry & long.MaxValue, 8);
                break;
            case Damage.CopiedMissingOnL2Table:
                await PatchAsync(image, l1Offset, l1Entry & long.MaxValue, 8);
                break;
            case Damage.RefcountTooLowOnSharedCluster:
                await PatchAsync(image, RefcountOf(data), 1, 2);
                break;
        }

        return image;
    }
}

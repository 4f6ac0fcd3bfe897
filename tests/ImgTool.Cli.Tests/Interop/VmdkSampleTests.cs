using System.Buffers.Binary;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// VMDK variants qemu-img cannot create but VMware products make (ESXi seSparse snapshots, vmfs flat descriptors,
/// VMware Workstation's stream layout), built here byte by byte from the layouts QEMU reads, then read by both.
/// </summary>
public sealed class VmdkSampleTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task An_ESXi_seSparse_snapshot_reads_as_qemu_img_reads_it()
    {
        string descriptor = WriteSeSparse(out byte[] model);
        await SameAsQemu(descriptor, model);
        RunResult info = await Imgtool("info", descriptor);
        Assert.Contains("create type: seSparse", info.Out, StringComparison.Ordinal);
        Assert.Contains("format: SESPARSE", info.Out, StringComparison.Ordinal);
        RunResult map = await Imgtool("map", "--output=json", descriptor);
        Assert.Contains("\"zero\": true, \"data\": false", map.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dirty_seSparse_snapshot_is_refused_clearly()
    {
        string descriptor = WriteSeSparse(out _, replayJournal: true);
        RunResult ours = await Imgtool("info", descriptor);
        Assert.NotEqual(0, ours.ExitCode);
        Assert.Contains("journal", ours.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("vmfs", "RW {0} VMFS \"disk-flat.vmdk\"")]
    [InlineData("monolithicFlat", "RW {0} FLAT \"disk-flat.vmdk\" 0")]
    public async Task Vmfs_and_flat_descriptors_made_by_ESXi_read_as_qemu_img_reads_them(string createType, string extentLine)
    {
        byte[] model = SparseFile(_dir.File("disk-flat.vmdk"), 4 * MiB, (4096, 100_000), (3 * MiB, MiB));
        string descriptor = _dir.File("disk.vmdk");
        await File.WriteAllTextAsync(descriptor,
            "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=7d8a3f21\nparentCID=ffffffff\nisNativeSnapshot=\"no\"\n"
            + $"createType=\"{createType}\"\n\n# Extent description\n{string.Format(System.Globalization.CultureInfo.InvariantCulture, extentLine, 4 * MiB / 512)}\n\n"
            + "# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.geometry.cylinders = \"0\"\nddb.geometry.heads = \"255\"\n"
            + "ddb.geometry.sectors = \"63\"\nddb.longContentID = \"0123456789abcdef0123456789abcdef\"\nddb.uuid = \"60 00 C2 9a 7c 1d 4e 57-9d 6c 33 5f 0b 2a 63 1e\"\nddb.virtualHWVersion = \"14\"\n");
        await SameAsQemu(descriptor, model);
    }

    /// <summary>VMware Workstation's split disk: 4192256-sector extents (2 GiB - 1 MiB), names with spaces, and the
    /// descriptor fields Workstation writes (encoding, isNativeSnapshot, uuid, longContentID, toolsInstallType).</summary>
    [Fact]
    public async Task A_VMware_Workstation_split_disk_reads_and_writes_as_qemu_img_does()
    {
        string[] names = ["OpenSUSE 64-bit-s001.vmdk", "OpenSUSE 64-bit-s002.vmdk", "OpenSUSE 64-bit-s003.vmdk"];
        long[] sectors = [4192256, 4192256, 20480];
        for (int i = 0; i < names.Length; i++)
        {
            Assert.Equal(0, (await QemuImg("create", "-q", "-f", "vmdk", _dir.File(names[i]), (sectors[i] * 512).ToString(System.Globalization.CultureInfo.InvariantCulture))).ExitCode);
        }

        string descriptor = _dir.File("OpenSUSE 64-bit.vmdk");
        await File.WriteAllTextAsync(descriptor,
            "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=bb3b482f\nparentCID=ffffffff\nisNativeSnapshot=\"no\"\ncreateType=\"twoGbMaxExtentSparse\"\n\n"
            + "# Extent description\n" + string.Concat(names.Select((n, i) => $"RW {sectors[i]} SPARSE \"{n}\"\n"))
            + "\n# The Disk Data Base\n#DDB\n\nddb.toolsVersion = \"9282\"\nddb.adapterType = \"lsilogic\"\nddb.geometry.sectors = \"63\"\nddb.geometry.heads = \"255\"\n"
            + "ddb.geometry.cylinders = \"1044\"\nddb.uuid = \"60 00 C2 9b 7f 5e 2e 1a-4e 44 0c 2f 9a c3 6d 11\"\nddb.longContentID = \"4b1b6f5b7a1c2e3d4f5a6b7cbb3b482f\"\n"
            + "ddb.toolsInstallType = \"1\"\nddb.virtualHWVersion = \"9\"\n");
        RunResult io = await Qemu("qemu-io", "-c", "write -P 0x21 0 1M", "-c", "write -P 0x42 2146435072 100k", "-c", "write -P 0x63 4292870144 50k", descriptor);
        Assert.True(io.ExitCode == 0, io.ToString());
        string theirs = _dir.File("theirs.raw");
        string ours = _dir.File("ours.raw");
        Assert.Equal(0, (await QemuImg("convert", "-O", "raw", descriptor, theirs)).ExitCode);
        RunResult convert = await Imgtool("convert", "-O", "raw", descriptor, ours);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(0, (await QemuImg("compare", "-f", "raw", "-F", "raw", theirs, ours)).ExitCode);
        Assert.Equal(0, (await Imgtool("compare", descriptor, theirs)).ExitCode);

        // Written by us across the extent boundary, read by qemu-img.
        string copy = _dir.File("copy.vmdk");
        Assert.Equal(0, (await Imgtool("convert", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", descriptor, copy)).ExitCode);
        Assert.Equal(0, (await QemuImg("compare", descriptor, copy)).ExitCode);
    }

    /// <summary>An ESXi vmfsSparse snapshot delta (a "COWD" extent with 512-byte grains and 4096-entry grain tables)
    /// over a flat base, as ESXi 5 made them: both tools read the chain the same.</summary>
    [Fact]
    public async Task An_ESXi_vmfsSparse_delta_reads_as_qemu_img_reads_it()
    {
        const long size = 8 * MiB;
        byte[] model = SparseFile(_dir.File("base-flat.vmdk"), size, (0, 3 * MiB));
        await File.WriteAllTextAsync(_dir.File("base.vmdk"), $"version=1\nCID=11111111\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW {size / 512} VMFS \"base-flat.vmdk\"\n");

        // COWD header: magic, version 1, flags 3, capacity, granularity 1 sector, directory at sector 4 with 4 entries.
        byte[] delta = new byte[200 * 512];
        "COWD"u8.CopyTo(delta);
        void U32(long offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(delta.AsSpan((int)offset), value);
        U32(4, 1);
        U32(8, 3);
        U32(12, (uint)(size / 512));
        U32(16, 1);
        U32(20, 4);
        U32(24, 4);
        U32(4 * 512, 8); // grain table for the first 2 MiB at sector 8 (32 sectors long)
        U32((4 * 512) + 8, 40); // grain table for 4..6 MiB at sector 40
        var random = new Random(11);
        uint nextSector = 100;
        void Grain(int table, int entry, long diskOffset)
        {
            U32(((table == 0 ? 8 : 40) * 512) + (entry * 4), nextSector);
            byte[] data = new byte[512];
            random.NextBytes(data);
            data.CopyTo(delta, nextSector * 512);
            data.CopyTo(model, diskOffset);
            nextSector++;
        }

        Grain(0, 0, 0);
        Grain(0, 7, 7 * 512);
        Grain(0, 4095, (2 * MiB) - 512);
        Grain(2, 10, (4 * MiB) + (10 * 512));
        await File.WriteAllBytesAsync(_dir.File("snap-delta.vmdk"), delta);
        string descriptor = _dir.File("snap.vmdk");
        await File.WriteAllTextAsync(descriptor, "version=1\nCID=22222222\nparentCID=11111111\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"base.vmdk\"\n"
            + $"RW {size / 512} VMFSSPARSE \"snap-delta.vmdk\"\n");
        await SameAsQemu(descriptor, model);
    }

    [Fact]
    public async Task A_vmfsThin_descriptor_reads_although_qemu_img_refuses_it()
    {
        byte[] model = SparseFile(_dir.File("thin-flat.vmdk"), 2 * MiB, (0, 5000));
        string descriptor = _dir.File("thin.vmdk");
        await File.WriteAllTextAsync(descriptor, "version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfsThin\"\nRW 4096 VMFS \"thin-flat.vmdk\"\n");
        string copy = _dir.File("thin.raw");
        RunResult convert = await Imgtool("convert", "-O", "raw", descriptor, copy);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(model, await File.ReadAllBytesAsync(copy));
    }

    /// <summary>Both tools convert the image to the model's bytes, and info agrees.</summary>
    private async Task SameAsQemu(string image, byte[] model)
    {
        string theirs = _dir.File("theirs.raw");
        string ours = _dir.File("ours.raw");
        RunResult q = await QemuImg("convert", "-O", "raw", image, theirs);
        Assert.True(q.ExitCode == 0, q.ToString());
        RunResult o = await Imgtool("convert", "-O", "raw", image, ours);
        Assert.True(o.ExitCode == 0, o.ToString());
        Assert.Equal(model, await File.ReadAllBytesAsync(theirs));
        Assert.Equal(model, await File.ReadAllBytesAsync(ours));

        using var theirInfo = System.Text.Json.JsonDocument.Parse((await QemuImg("info", "--output=json", image)).Out);
        using var ourInfo = System.Text.Json.JsonDocument.Parse((await Imgtool("info", "--output=json", image)).Out);
        Assert.Equal(theirInfo.RootElement.GetProperty("format-specific").ToString(), ourInfo.RootElement.GetProperty("format-specific").ToString());
        Assert.Equal(theirInfo.RootElement.GetProperty("virtual-size").ToString(), ourInfo.RootElement.GetProperty("virtual-size").ToString());
    }

    /// <summary>
    /// An seSparse extent as ESXi writes it (the layout QEMU's vmdk_open_se_sparse reads): constant header, volatile
    /// header, a one-sector grain directory, 32 KiB grain tables, 4 KiB grains. 48 MiB: three grain tables' worth.
    /// </summary>
    private string WriteSeSparse(out byte[] model, bool replayJournal = false)
    {
        const long size = 48 * MiB;
        const long gdSector = 2;
        const long tablesSector = 8;
        const long grainsSector = 2048;
        byte[] disk = new byte[size];
        model = disk;
        byte[] file = new byte[(grainsSector * 512) + (64 * 4096)];
        void U64(long offset, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan((int)offset), value);

        U64(0, 0xcafebabe);
        U64(8, 0x0000000200000001);
        U64(16, size / 512);
        U64(24, 8);
        U64(32, 64);
        U64(80, 1); // volatile header sector
        U64(88, 1);
        U64(128, gdSector);
        U64(136, 1);
        U64(144, tablesSector);
        U64(152, 3 * 64);
        U64(192, grainsSector);
        U64(200, 64 * 8);
        U64(512, 0xcafecafe);
        U64(512 + 24, replayJournal ? 1UL : 0);

        // Directory: the first 16 MiB use grain table 1, the third 16 MiB use table 0, the second has none.
        U64(gdSector * 512, 0x1000000000000001);
        U64((gdSector * 512) + 16, 0x1000000000000000);
        var random = new Random(5);
        int cluster = 0;
        void Grain(long tableIndex, int entry, long diskOffset)
        {
            // Cluster numbers are split: low 12 bits at 48..59, the rest in the low 48 bits (QEMU's decoding).
            ulong value = 0x3000000000000000 | ((ulong)(cluster & 0xfff) << 48) | ((ulong)cluster >> 12);
            U64(((tablesSector + (tableIndex * 64)) * 512) + (entry * 8), value);
            byte[] data = new byte[4096];
            random.NextBytes(data);
            data.CopyTo(file, (grainsSector * 512) + (cluster * 4096L));
            data.CopyTo(disk, diskOffset);
            cluster++;
        }

        Grain(1, 0, 0);
        Grain(1, 1, 4096);
        Grain(1, 100, 100 * 4096);
        Grain(0, 5, (32L * MiB) + (5 * 4096));
        Grain(0, 4095, (48L * MiB) - 4096);
        U64(((tablesSector + 64) * 512) + (2 * 8), 0x2000000000000000); // a zero grain
        U64(((tablesSector + 64) * 512) + (3 * 8), 0x1000000000000000); // an unmapped grain

        File.WriteAllBytes(_dir.File("snap-sesparse.vmdk"), file);
        string descriptor = _dir.File("snap.vmdk");
        File.WriteAllText(descriptor, "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\nparentCID=ffffffff\n"
            + $"createType=\"seSparse\"\n\n# Extent description\nRW {size / 512} SESPARSE \"snap-sesparse.vmdk\"\n\n#DDB\nddb.adapterType = \"lsilogic\"\n");
        return descriptor;
    }
}

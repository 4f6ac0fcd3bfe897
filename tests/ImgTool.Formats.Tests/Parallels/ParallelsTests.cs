using System.Buffers.Binary;
using System.Security.Cryptography;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats.Parallels;
using static ImgTool.Formats.Tests.ReadOnly.ReadOnlyTestSupport;

namespace ImgTool.Formats.Tests.Parallels;

/// <summary>Parallels images made by qemu-img and by hand read as they should; hostile BATs and extensions give one clear line.</summary>
public sealed class ParallelsTests : IDisposable
{
    private const int Cluster = 64 * 1024;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Converted_by_qemu_img_it_reads_as_qemu_img_reads_it()
    {
        byte[] model = RawFile(_dir.File("src.raw"), 8 * MiB, (0, 300_000), (3 * MiB, 65536 * 3), (7 * MiB + 123, 5000));
        string image = _dir.File("p.hdd");
        await QemuAsync("convert", "-O", "parallels", _dir.File("src.raw"), image);
        await using IImage opened = await OpenAsync(image);
        Assert.Equal("parallels", opened.FormatName);
        Assert.False(opened.Details.ReportsDriverInfo);
        byte[] ours = await ReadAllAsync(opened);
        Assert.Equal(model, ours);
        Assert.Equal(await QemuRawAsync(image, _dir), ours);
        Assert.Equal(BlockStatusKind.Data, (await opened.GetStatusAsync(0, MiB)).Kind);
        Assert.Equal(BlockStatusKind.Unallocated, (await opened.GetStatusAsync(5 * MiB, MiB)).Kind);
    }

    [Fact]
    public async Task Created_by_qemu_img_and_written_by_qemu_io_it_reads_as_qemu_img_reads_it()
    {
        string image = _dir.File("c.hdd");
        await QemuAsync("create", "-f", "parallels", "-o", "cluster_size=64k", image, "16M");
        (int code, string output) = await ExternalTool.RunAsync("qemu-io", "-c", "write -P 0x11 100k 200k", "-c", "write -P 0x22 15M 4k", image);
        Assert.True(code == 0, output);
        await using IImage opened = await OpenAsync(image);
        byte[] ours = await ReadAllAsync(opened);
        Assert.Equal(await QemuRawAsync(image, _dir), ours);
        Assert.Equal(0x22, ours[15 * MiB]);
    }

    /// <summary>The old "WithoutFreeSpace" magic counts BAT entries in sectors; the extended one in clusters.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Both_magics_map_clusters_by_their_own_unit(bool extended)
    {
        string image = _dir.File("m.hdd");
        byte[] expected = await BuildAsync(image, extended, diskClusters: 4, [(1, 0xaa), (3, 0xbb)]);
        await using IImage opened = await OpenAsync(image);
        Assert.Equal(expected, await ReadAllAsync(opened));
        Assert.Equal(await QemuRawAsync(image, _dir), expected);
    }

    [Fact]
    public async Task The_dirty_bitmap_extension_is_read()
    {
        string image = _dir.File("b.hdd");
        await BuildAsync(image, extended: true, diskClusters: 16, [(0, 1)], withBitmap: true);
        await using IImage opened = await OpenAsync(image);
        var parallels = Assert.IsType<ParallelsImage>(opened);
        ParallelsDirtyBitmap bitmap = Assert.Single(parallels.DirtyBitmaps);
        Assert.Equal(Cluster, bitmap.GranularityBytes);
        Assert.Equal("e4f2eed0-37fe-4539-b50b-85d2e7fd235f", bitmap.Id);
        var ranges = await bitmap.ReadDirtyRangesAsync(opened.HostFile, Cluster, opened.SizeBytes, CancellationToken.None);
        Assert.Equal([(5L * Cluster, 2L * Cluster), (10L * Cluster, 3L * Cluster)], ranges);
    }

    /// <summary>
    /// QEMU's real-world sample made with prlctl and ploop (sample_images/parallels-with-bitmap.sh): after a backup
    /// created the bitmap, dd wrote 64 KiB blocks 5-6, 30 and 10-12, so exactly those are dirty.
    /// </summary>
    [Fact]
    public async Task The_ploop_made_sample_has_the_dirty_bitmap_its_script_wrote()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "ImgTool.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("ImgTool.sln not found");
        }

        (int code, string output) = await ExternalTool.RunAsync("bash", Path.Combine(root, "tools", "fixtures", "get-qemu-samples.sh"));
        Assert.True(code == 0, output);
        string image = _dir.File("parallels-with-bitmap");
        await using (FileStream compressed = File.OpenRead(Path.Combine(root, "fixtures", "samples", "qemu-iotests", "parallels-with-bitmap.bz2")))
        await using (FileStream target = File.Create(image))
        {
            await using var bzip2 = new ICSharpCode.SharpZipLib.BZip2.BZip2InputStream(compressed);
            await bzip2.CopyToAsync(target);
        }

        await using IImage opened = await OpenAsync(image);
        Assert.Equal(64L << 30, opened.SizeBytes);
        ParallelsDirtyBitmap bitmap = Assert.Single(Assert.IsType<ParallelsImage>(opened).DirtyBitmaps);
        Assert.Equal(Cluster, bitmap.GranularityBytes);
        var ranges = await bitmap.ReadDirtyRangesAsync(opened.HostFile, 1 << 20, opened.SizeBytes, CancellationToken.None);
        Assert.Equal([(5L * Cluster, 2L * Cluster), (10L * Cluster, 3L * Cluster), (30L * Cluster, 1L * Cluster)], ranges);
    }

    [Fact]
    public async Task Check_counts_as_qemu_does_and_an_image_left_in_use_is_a_corruption()
    {
        string image = _dir.File("k.hdd");
        await BuildAsync(image, extended: true, diskClusters: 8, [(1, 0xaa), (3, 0xbb), (6, 0xcc)]);
        await using (IImage opened = await OpenAsync(image))
        {
            CheckReport report = await ((ICheckable)opened).CheckAsync(CheckRepair.None);
            Assert.Equal((0L, 0L, 8L, 3L, 0L, 4L * Cluster), (report.Corruptions, report.Leaks, report.TotalClusters!.Value, report.AllocatedClusters!.Value, report.FragmentedClusters!.Value, report.ImageEndOffset!.Value));
            await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await ((ICheckable)opened).CheckAsync(CheckRepair.All));
        }

        await Patch32LittleEndianAsync(image, 44, ParallelsHeader.InUseOpen);
        await using (IImage opened = await OpenAsync(image))
        {
            CheckReport report = await ((ICheckable)opened).CheckAsync(CheckRepair.None);
            Assert.Equal(1, report.Corruptions);
            Assert.Contains("not closed correctly", Assert.Single(report.Findings).Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_bad_extension_checksum_is_a_corruption()
    {
        string image = _dir.File("x.hdd");
        await BuildAsync(image, extended: true, diskClusters: 16, [(0, 1)], withBitmap: true);
        await PatchAsync(image, (3 * Cluster) + 100, new byte[] { 0x5a });
        Assert.IsType<ImageCorruptException>(await FailsAsync(image, "wrong checksum"));
    }

    [Theory]
    [InlineData("tracks0", "zero sectors per track")]
    [InlineData("tracksHuge", "is too big")]
    [InlineData("batHuge", "catalog too large")]
    [InlineData("batPastEnd", "reaches past the end of the file")]
    [InlineData("entryPastEnd", "past the end of the file")]
    [InlineData("entryInHeader", "inside the header and BAT")]
    [InlineData("duplicate", "which another entry already uses")]
    [InlineData("extPastEnd", "format extension cluster")]
    public async Task Hostile_headers_and_BATs_give_one_clear_line(string damage, string expected)
    {
        string image = _dir.File("h.hdd");
        await BuildAsync(image, extended: true, diskClusters: 4, [(1, 0xaa), (3, 0xbb)]);
        const int bat = ParallelsHeader.SizeBytes;
        switch (damage)
        {
            case "tracks0": await Patch32LittleEndianAsync(image, 28, 0); break;
            case "tracksHuge": await Patch32LittleEndianAsync(image, 28, 0x7fffffff); break;
            case "batHuge": await Patch32LittleEndianAsync(image, 32, 0xffffffff); break;
            case "batPastEnd": await Patch32LittleEndianAsync(image, 32, 0x10000000); break;
            case "entryPastEnd": await Patch32LittleEndianAsync(image, bat + 4, 1000); break;
            case "entryInHeader": await Patch32LittleEndianAsync(image, 48, 2 * Cluster / 512); break;
            case "duplicate": await Patch32LittleEndianAsync(image, bat + 8, 1); break;
            case "extPastEnd": await Patch32LittleEndianAsync(image, 56, 100000); break;
        }

        await FailsAsync(image, expected);
    }

    /// <summary>
    /// Writes a Parallels image by hand: header and BAT in cluster 0, data clusters after it (each filled with one
    /// byte value), and with <paramref name="withBitmap"/> a format extension with one dirty bitmap at 64 KiB
    /// granularity marking clusters 5-6 and 10-12. Returns the disk's expected bytes.
    /// </summary>
    internal static async Task<byte[]> BuildAsync(string path, bool extended, int diskClusters, (int Guest, byte Fill)[] clusters, bool withBitmap = false)
    {
        int hostClusters = 1 + clusters.Length + (withBitmap ? 2 : 0);
        byte[] file = new byte[hostClusters * Cluster];
        byte[] disk = new byte[diskClusters * Cluster];
        int tracks = Cluster / 512;
        int extCluster = 1 + clusters.Length + 1;
        new ParallelsHeader(extended, 2, 16, 32, (uint)tracks, (uint)diskClusters, (ulong)(diskClusters * tracks), 0x312e3276, (uint)tracks, 0, withBitmap ? (ulong)(extCluster * tracks) : 0).Write(file);
        for (int i = 0; i < clusters.Length; i++)
        {
            int host = 1 + i;
            BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(ParallelsHeader.SizeBytes + (clusters[i].Guest * 4)), (uint)(extended ? host : host * tracks));
            file.AsSpan(host * Cluster, Cluster).Fill(clusters[i].Fill);
            disk.AsSpan(clusters[i].Guest * Cluster, Cluster).Fill(clusters[i].Fill);
        }

        if (withBitmap)
        {
            int bitmapCluster = extCluster - 1;
            Span<byte> bits = file.AsSpan(bitmapCluster * Cluster, Cluster);
            foreach (int bit in (int[])[5, 6, 10, 11, 12])
            {
                bits[bit / 8] |= (byte)(1 << (bit % 8));
            }

            Span<byte> ext = file.AsSpan(extCluster * Cluster, Cluster);
            BinaryPrimitives.WriteUInt64LittleEndian(ext, ParallelsExtension.Magic);
            Span<byte> feature = ext[ParallelsExtension.HeaderBytes..];
            BinaryPrimitives.WriteUInt64LittleEndian(feature, ParallelsExtension.DirtyBitmapMagic);
            BinaryPrimitives.WriteUInt32LittleEndian(feature[16..], ParallelsExtension.BitmapHeaderBytes + 8);
            Span<byte> data = feature[ParallelsExtension.FeatureHeaderBytes..];
            BinaryPrimitives.WriteUInt64LittleEndian(data, (ulong)(diskClusters * tracks));
            Convert.FromHexString("e4f2eed037fe4539b50b85d2e7fd235f").CopyTo(data[8..]);
            BinaryPrimitives.WriteUInt32LittleEndian(data[24..], (uint)tracks);
            BinaryPrimitives.WriteUInt32LittleEndian(data[28..], 1);
            BinaryPrimitives.WriteUInt64LittleEndian(data[32..], (ulong)(bitmapCluster * tracks));
#pragma warning disable CA5351 // the format's checksum
            MD5.HashData(ext[ParallelsExtension.HeaderBytes..]).CopyTo(ext[8..]);
#pragma warning restore CA5351
        }

        await File.WriteAllBytesAsync(path, file);
        return disk;
    }
}

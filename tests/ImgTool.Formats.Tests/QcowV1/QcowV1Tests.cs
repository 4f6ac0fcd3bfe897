using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats.QcowV1;
using static ImgTool.Formats.Tests.ReadOnly.ReadOnlyTestSupport;

namespace ImgTool.Formats.Tests.QcowV1;

/// <summary>qcow v1 images made by qemu-img read as qemu-img reads them; hostile headers and tables give one clear line.</summary>
public sealed class QcowV1Tests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>
    /// qemu-img convert [-c] -O qcow. With -c, qemu-img 7.2 here writes every cluster and then exits 1 without a
    /// message (its last, zero-length compressed write, which pads the file, fails); the image is complete, which
    /// the callers check by comparing qemu-img's own reading of it with the source.
    /// </summary>
    private static async Task ConvertAsync(bool compressed, string source, string image)
    {
        if (!compressed)
        {
            await QemuAsync("convert", "-O", "qcow", source, image);
            return;
        }

        (int code, string output) = await ExternalTool.RunAsync("qemu-img", "convert", "-c", "-O", "qcow", source, image);
        Assert.True(code == 0 || (code == 1 && output.Length == 0 && File.Exists(image)), output);
    }

    private byte[] MakeRaw(string name) =>
        RawFile(_dir.File(name), 8 * MiB, (0, 300_000), (3 * MiB, 65536 * 3), (7 * MiB + 123, 5000));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Converted_by_qemu_img_it_reads_as_qemu_img_reads_it(bool compressed)
    {
        byte[] model = MakeRaw("src.raw");
        string image = _dir.File("q.qcow");
        await ConvertAsync(compressed, _dir.File("src.raw"), image);
        await using IImage opened = await OpenAsync(image);
        Assert.Equal("qcow", opened.FormatName);
        Assert.Equal(4096, opened.Details.ClusterSizeBytes);
        byte[] ours = await ReadAllAsync(opened);
        Assert.Equal(await QemuRawAsync(image, _dir), ours);
        Assert.Equal(model, ours);

        BlockStatus first = await opened.GetStatusAsync(0, opened.SizeBytes);
        Assert.Equal(BlockStatusKind.Data, first.Kind);
        Assert.Equal(compressed ? -1 : first.HostOffsetBytes, first.HostOffsetBytes);
        BlockStatus hole = await opened.GetStatusAsync(5 * MiB, MiB);
        Assert.Equal(BlockStatusKind.Unallocated, hole.Kind);
    }

    [Fact]
    public async Task A_qemu_img_created_image_with_a_backing_file_and_writes_reads_through()
    {
        byte[] model = MakeRaw("base.raw");
        string image = _dir.File("over.qcow");
        await QemuAsync("create", "-f", "qcow", "-b", "base.raw", "-F", "raw", image);
        (int code, string output) = await ExternalTool.RunAsync("qemu-io", "-c", "write -P 0x5a 1M 64k", "-c", "write -P 0x33 4095 2", image);
        Assert.True(code == 0, output);
        await using IImage opened = await OpenAsync(image);
        Assert.Equal("base.raw", ((IBackingChain)opened).BackingFileName);
        byte[] ours = await ReadAllAsync(opened);
        Assert.Equal(await QemuRawAsync(image, _dir), ours);
        Assert.Equal(0x5a, ours[MiB]);
        Assert.Equal(model[2 * MiB], ours[2 * MiB]);
    }

    [Fact]
    public async Task An_empty_image_reads_as_zeros_and_writes_are_refused()
    {
        string image = _dir.File("e.qcow");
        await QemuAsync("create", "-f", "qcow", image, "3M");
        await using (IImage opened = await OpenAsync(image))
        {
            Assert.Equal(3 * MiB, opened.SizeBytes);
            Assert.True(opened.IsReadOnly);
            Assert.All(await ReadAllAsync(opened), b => Assert.Equal(0, b));
            var e = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await opened.WriteAsync(0, new byte[512]));
            Assert.Contains("read-only format", e.Message, StringComparison.Ordinal);
        }

        var rw = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await OpenAsync(image, readOnly: false));
        Assert.Contains("'qcow' is a read-only format", rw.Message, StringComparison.Ordinal);
        var create = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () =>
            await ImageFactory.CreateAsync(_dir.File("new.qcow"), QcowV1Format.Instance, new ImageCreateRequest(MiB, Block.Options.ImageOptions.Empty)));
        Assert.Contains("read-only format", create.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.File("new.qcow")));
    }

    [Fact]
    public void The_header_is_48_bytes_and_round_trips()
    {
        var header = new QcowV1Header(1, 48, 8, 0, 1 << 30, 12, 9, 0, 4096);
        byte[] bytes = new byte[QcowV1Header.SizeBytesOnDisk];
        header.Write(bytes);
        Assert.Equal(48, QcowV1Header.SizeBytesOnDisk);
        Assert.Equal(header, QcowV1Header.Read(bytes, null));
        Assert.True(QcowV1Header.IsQcowV1(bytes));
    }

    [Fact]
    public async Task Legacy_AES_encryption_is_described_by_info_and_refused_for_data()
    {
        string image = _dir.File("aes.qcow");
        await QemuAsync("create", "-f", "qcow", image, "1M");
        await Patch32BigEndianAsync(image, 36, QcowV1Header.CryptAes);
        await using (IImage info = await OpenAsync(image, metadataOnly: true))
        {
            Assert.True(info.Details.Encrypted);
            await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await info.ReadAsync(0, new byte[512]));
        }

        await FailsAsync(image, "legacy AES encryption are not supported");
    }

    [Theory]
    [InlineData(32, 8u, "cluster size must be between 512 and 64k")]
    [InlineData(32, 17u, "cluster size must be between 512 and 64k")]
    [InlineData(33, 14u, "L2 table size must be between 512 and 64k")]
    [InlineData(36, 7u, "invalid encryption method")]
    public async Task Bad_header_bytes_are_refused(int offset, uint value, string expected)
    {
        string image = _dir.File("h.qcow");
        await QemuAsync("create", "-f", "qcow", image, "1M");
        if (offset is 32 or 33)
        {
            await PatchAsync(image, offset, new[] { (byte)value });
        }
        else
        {
            await Patch32BigEndianAsync(image, offset, value);
        }

        await FailsAsync(image, expected);
    }

    [Fact]
    public async Task A_size_that_needs_a_gigantic_L1_table_is_refused_before_allocating_it()
    {
        string image = _dir.File("big.qcow");
        await QemuAsync("create", "-f", "qcow", image, "1M");
        await Patch64BigEndianAsync(image, 24, 1UL << 61);
        await FailsAsync(image, "L1 table would take");
    }

    [Fact]
    public async Task An_L1_table_past_the_end_of_the_file_is_a_corruption()
    {
        string image = _dir.File("l1.qcow");
        await QemuAsync("create", "-f", "qcow", image, "1M");
        await Patch64BigEndianAsync(image, 40, 1UL << 40);
        var e = await FailsAsync(image, "L1 table");
        Assert.IsType<ImageCorruptException>(e);
    }

    [Fact]
    public async Task L1_and_L2_entries_past_the_end_of_the_file_are_corruptions()
    {
        MakeRaw("src.raw");
        string image = _dir.File("t.qcow");
        await QemuAsync("convert", "-O", "qcow", _dir.File("src.raw"), image);
        byte[] head = new byte[48];
        await using (var stream = File.OpenRead(image))
        {
            await stream.ReadExactlyAsync(head);
        }

        long l1Offset = (long)BinaryPrimitives.ReadUInt64BigEndian(head.AsSpan(40));
        string badL1 = _dir.File("badl1.qcow");
        File.Copy(image, badL1);
        await Patch64BigEndianAsync(badL1, l1Offset, 1UL << 50);
        Assert.IsType<ImageCorruptException>(await FailsAsync(badL1, "past the end of the file"));

        // The first L2 table: point its first data cluster far past the end.
        byte[] l1Entry = new byte[8];
        await using (var stream = File.OpenRead(image))
        {
            stream.Position = l1Offset;
            await stream.ReadExactlyAsync(l1Entry);
        }

        long l2Offset = (long)BinaryPrimitives.ReadUInt64BigEndian(l1Entry);
        await Patch64BigEndianAsync(image, l2Offset, 1UL << 50);
        Assert.IsType<ImageCorruptException>(await FailsAsync(image, "past the end of the file"));
    }

    [Fact]
    public async Task A_compressed_cluster_that_does_not_inflate_to_a_cluster_is_a_corruption()
    {
        MakeRaw("src.raw");
        string image = _dir.File("c.qcow");
        await ConvertAsync(true, _dir.File("src.raw"), image);
        await using (IImage opened = await OpenAsync(image))
        {
            Assert.Equal(-1, (await opened.GetStatusAsync(0, 4096)).HostOffsetBytes);
        }

        // Overwrite the compressed data of the first clusters (they follow the tables) with garbage.
        long length = new FileInfo(image).Length;
        byte[] garbage = new byte[8192];
        new Random(3).NextBytes(garbage);
        byte[] head = new byte[48];
        await using (var stream = File.OpenRead(image))
        {
            await stream.ReadExactlyAsync(head);
        }

        long l1Offset = (long)BinaryPrimitives.ReadUInt64BigEndian(head.AsSpan(40));
        byte[] l1Entry = new byte[8];
        byte[] l2Entry = new byte[8];
        await using (var stream = File.OpenRead(image))
        {
            stream.Position = l1Offset;
            await stream.ReadExactlyAsync(l1Entry);
            stream.Position = (long)BinaryPrimitives.ReadUInt64BigEndian(l1Entry);
            await stream.ReadExactlyAsync(l2Entry);
        }

        ulong entry = BinaryPrimitives.ReadUInt64BigEndian(l2Entry);
        long host = (long)(entry & ((1UL << (63 - 12)) - 1));
        await PatchAsync(image, host, garbage.AsMemory(0, (int)Math.Min(garbage.Length, length - host)));
        Assert.IsType<ImageCorruptException>(await FailsAsync(image, "does not decompress"));
    }
}

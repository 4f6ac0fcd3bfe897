using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using static ImgTool.Formats.Tests.Vmdk.VmdkTestImages;

namespace ImgTool.Formats.Tests.Vmdk;

public sealed class VmdkImageTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> WritableSubformats => ["monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"];

    [Theory]
    [MemberData(nameof(WritableSubformats))]
    public async Task Writes_zeroes_and_partial_grains_read_back_after_reopen(string subformat)
    {
        string path = _dir.File($"{subformat}.vmdk");
        await CreateAsync(path, 8 * MiB, $"subformat={subformat}");
        byte[] model = new byte[8 * MiB];
        await using (IImage image = await OpenAsync(path, readOnly: false))
        {
            await Write(image, model, 100, Random(200_000, 1));
            await Write(image, model, 3 * MiB, Random(MiB, 2));
            await Write(image, model, (8 * MiB) - 1000, Random(1000, 3));
            await image.WriteZeroesAsync(3 * MiB, 128 * 1024, BlockZeroFlags.MayUnmap);
            model.AsSpan(3 * MiB, 128 * 1024).Clear();
            await image.WriteZeroesAsync(150, 10, BlockZeroFlags.None);
            model.AsSpan(150, 10).Clear();
        }

        await using IImage reader = await OpenAsync(path);
        Assert.Equal(model, await ReadAllAsync(reader));
        Assert.Equal(subformat.Contains("Flat", StringComparison.Ordinal) ? null : Grain, reader.Details.ClusterSizeBytes);
        // Never written: not data in sparse extents; data in a hole of the file for flat ones (as QEMU reports them).
        BlockStatus status = await reader.GetStatusAsync(6 * MiB, MiB);
        bool flat = subformat.Contains("Flat", StringComparison.Ordinal);
        Assert.Equal(flat, status.Kind == BlockStatusKind.Data);
        Assert.True(!flat || status.DataIsHostHole, status.ToString());
    }

    [Fact]
    public async Task Split_extents_cover_a_disk_larger_than_two_gib()
    {
        string path = _dir.File("big.vmdk");
        await CreateAsync(path, (5L << 30) + 512, "subformat=twoGbMaxExtentSparse");
        Assert.True(File.Exists(_dir.File("big-s003.vmdk")));
        byte[] across = Random(MiB, 9);
        long boundary = 2L << 30;
        await using (IImage image = await OpenAsync(path, readOnly: false))
        {
            Assert.Equal((5L << 30) + 512, image.SizeBytes);
            await image.WriteAsync(boundary - (MiB / 2), across);
            await image.WriteAsync(image.SizeBytes - 512, Random(512, 10));
        }

        await using IImage reader = await OpenAsync(path);
        byte[] back = new byte[MiB];
        await reader.ReadAsync(boundary - (MiB / 2), back);
        Assert.Equal(across, back);
        byte[] last = new byte[512];
        await reader.ReadAsync(reader.SizeBytes - 512, last);
        Assert.Equal(Random(512, 10), last);
    }

    [Fact]
    public async Task Zeroed_grains_hide_the_parent_and_partial_writes_copy_it()
    {
        string basePath = _dir.File("base.vmdk");
        await CreateAsync(basePath, 4 * MiB);
        byte[] parent = Random(4 * MiB, 4);
        await using (IImage image = await OpenAsync(basePath, readOnly: false))
        {
            await image.WriteAsync(0, parent);
        }

        string child = _dir.File("child.vmdk");
        await CreateAsync(child, 4 * MiB, "zeroed_grain=on", backing: "base.vmdk");
        byte[] model = (byte[])parent.Clone();
        await using (IImage image = await OpenAsync(child, readOnly: false))
        {
            Assert.Equal("base.vmdk", ((IBackingChain)image).BackingFileName);
            await Write(image, model, 70_000, Random(100, 5)); // copy-on-write of the rest of the grain
            await image.WriteZeroesAsync(MiB, 2 * Grain, BlockZeroFlags.MayUnmap);
            model.AsSpan(MiB, 2 * Grain).Clear();
            Assert.Equal(BlockStatusKind.Zero, (await image.GetStatusAsync(MiB, 2 * Grain)).Kind);
            Assert.Equal(BlockStatusKind.Unallocated, (await image.GetStatusAsync(2 * MiB, Grain)).Kind);
        }

        await using IImage reader = await OpenAsync(child);
        Assert.Equal(model, await ReadAllAsync(reader));
    }

    [Fact]
    public async Task A_parent_changed_after_the_delta_was_made_is_refused_on_read()
    {
        string basePath = _dir.File("base.vmdk");
        await CreateAsync(basePath, MiB);
        await CreateAsync(_dir.File("child.vmdk"), MiB, backing: "base.vmdk");
        await using (IImage image = await OpenAsync(basePath, readOnly: false))
        {
            await image.WriteAsync(0, new byte[] { 1 }); // the first write gives the parent a new CID
        }

        await using IImage reader = await OpenAsync(_dir.File("child.vmdk"));
        var e = await Assert.ThrowsAsync<BackingFileException>(async () => await reader.ReadAsync(0, new byte[512]));
        Assert.Contains("parentCID", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StreamOptimized_takes_compressed_grains_and_in_order_writes_then_reads_them()
    {
        string path = _dir.File("s.vmdk");
        long size = (3 * MiB) + 1000; // a partial last grain
        await CreateAsync(path, size, "subformat=streamOptimized");
        byte[] model = new byte[(3 * MiB) + 1024];
        await using (IImage image = await OpenAsync(path, readOnly: false))
        {
            var compressed = Assert.IsAssignableFrom<ICompressedWrites>(image);
            Assert.Equal(Grain, compressed.CompressionUnitBytes);
            byte[] grain = Random(Grain, 6);
            byte[] packed = new byte[compressed.MaxCompressedBytes];
            int length = compressed.Compress(grain, packed);
            await compressed.WriteCompressedAsync(0, packed.AsMemory(0, length), isCompressed: true);
            grain.CopyTo(model, 0);
            await compressed.WriteCompressedAsync(Grain, grain, isCompressed: false);
            grain.CopyTo(model, Grain);

            // Plain writes in order, a partial grain gathered until the end.
            await Write(image, model, MiB, Random(MiB + 5000, 7));
            await Write(image, model, 3 * MiB, Random(1024, 8));
            await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await image.WriteAsync(0, new byte[512]));
        }

        await using IImage reader = await OpenAsync(path);
        Assert.Equal(new Block.Info.InfoString("streamOptimized"), reader.Details.FormatSpecific!["create-type"]);
        Assert.Equal(model.AsSpan(0, (int)reader.SizeBytes).ToArray(), await ReadAllAsync(reader));
        Assert.Equal(BlockStatusKind.Unallocated, (await reader.GetStatusAsync(2 * Grain, Grain)).Kind);
        Assert.Equal(-1, (await reader.GetStatusAsync(0, Grain)).HostOffsetBytes);
    }

    [Fact]
    public async Task Info_lists_the_extents_as_qemu_img_does()
    {
        string path = _dir.File("f.vmdk");
        await CreateAsync(path, 3 * MiB, "subformat=monolithicFlat,adapter_type=lsilogic,hwversion=13");
        await using IImage image = await OpenAsync(path);
        string text = await File.ReadAllTextAsync(path);
        Assert.Contains("RW 6144 FLAT \"f-flat.vmdk\" 0", text, StringComparison.Ordinal);
        Assert.Contains("ddb.adapterType = \"lsilogic\"", text, StringComparison.Ordinal);
        Assert.Contains("ddb.geometry.heads = \"255\"", text, StringComparison.Ordinal);
        Assert.Contains("ddb.virtualHWVersion = \"13\"", text, StringComparison.Ordinal);
        Block.Info.InfoObject data = image.Details.FormatSpecific!;
        Assert.Equal(["cid", "parent-cid", "create-type", "extents"], data.Members.Select(m => m.Key));
        Assert.Equal(new Block.Info.InfoNumber(0xffffffff), data["parent-cid"]);
        Assert.Null(image.Details.ClusterSizeBytes);
    }

    [Theory]
    [InlineData("subformat=monolithicFlat,zeroed_grain=on")]
    [InlineData("compat6=on,hwversion=7")]
    [InlineData("subformat=streamOptimised")]
    [InlineData("adapter_type=scsi")]
    public async Task Contradictory_or_bad_create_options_are_errors_not_ignored(string options)
    {
        string path = _dir.File("bad.vmdk");
        await Assert.ThrowsAnyAsync<ImgToolException>(async () => await CreateAsync(path, MiB, options));
        Assert.False(File.Exists(path));
        Assert.False(File.Exists(_dir.File("bad-flat.vmdk")));
    }

    [Fact]
    public void Compression_is_offered_only_for_streamOptimized()
    {
        Assert.True(Formats.Vmdk.VmdkFormat.Instance.SupportsCompression(Block.Options.ImageOptions.Parse(["subformat=streamOptimized"])));
        Assert.False(Formats.Vmdk.VmdkFormat.Instance.SupportsCompression(Block.Options.ImageOptions.Parse(["subformat=monolithicSparse"])));
        Assert.False(Formats.Vmdk.VmdkFormat.Instance.SupportsCompression(Block.Options.ImageOptions.Empty));
    }

    [Fact]
    public async Task Check_finds_grains_past_the_end_of_the_file()
    {
        string path = _dir.File("c.vmdk");
        await CreateAsync(path, 4 * MiB);
        await using (IImage image = await OpenAsync(path, readOnly: false))
        {
            await image.WriteAsync(MiB, Random(Grain, 1));
            CheckReport clean = await ((ICheckable)image).CheckAsync(CheckRepair.None);
            Assert.Equal(0, clean.Corruptions);
        }

        // Cut the file before the grain: the grain table now points past the end.
        using (var stream = new FileStream(path, FileMode.Open))
        {
            stream.SetLength(stream.Length - Grain);
        }

        await using IImage reader = await OpenAsync(path);
        CheckReport report = await ((ICheckable)reader).CheckAsync(CheckRepair.None);
        Assert.Equal(1, report.Corruptions);
        Assert.Contains("points after EOF", report.Findings[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_writes_to_new_and_old_grains_all_land()
    {
        string path = _dir.File("par.vmdk");
        await CreateAsync(path, 16 * MiB);
        byte[] model = new byte[16 * MiB];
        await using (IImage image = await OpenAsync(path, readOnly: false))
        {
            // 64 writes of odd sizes at odd places, several per grain, none overlapping, all at once.
            var writes = Enumerable.Range(0, 64).Select(i => (Offset: (i * 250_000L) + (i % 7 * 333), Data: Random(100_000 + (i * 997), 100 + i))).ToArray();
            foreach (var (offset, data) in writes)
            {
                data.CopyTo(model, offset);
            }

            await Task.WhenAll(writes.Select(w => Task.Run(async () => await image.WriteAsync(w.Offset, w.Data))));
            Assert.Equal(model, await ReadAllAsync(image));
        }

        await using IImage reader = await OpenAsync(path);
        Assert.Equal(model, await ReadAllAsync(reader));
        Assert.Equal(0, (await ((ICheckable)reader).CheckAsync(CheckRepair.None)).Corruptions);
    }

    [Fact]
    public async Task Grain_tables_dropped_from_a_small_cache_are_read_again_correctly()
    {
        string path = _dir.File("cache.vmdk");
        const long size = 256L * MiB; // eight grain tables of 32 MiB each
        await CreateAsync(path, size);
        var writes = Enumerable.Range(0, 24).Select(i => (Offset: ((i * 7L) % 8 * 32 * MiB) + (i * 70_001L), Data: Random(5000 + i, 50 + i))).ToArray();
        byte[] model = new byte[size];
        using (var file = Block.Host.LinuxHostFile.Open(path, new Block.Host.HostOpenOptions(ReadOnly: false)))
        using (var extent = await Formats.Vmdk.VmdkSparseExtent.OpenAsync(file, 0, string.Empty, ownsFile: false, readOnly: false, CancellationToken.None, maxCachedTables: 2))
        {
            foreach (var (offset, data) in writes)
            {
                await extent.WriteAsync(offset, data, (_, buffer, _) => { buffer.Span.Clear(); return ValueTask.CompletedTask; }, CancellationToken.None);
                data.CopyTo(model, offset);
            }

            foreach (var (offset, data) in writes.Reverse())
            {
                byte[] back = new byte[data.Length];
                for (int done = 0; done < back.Length;)
                {
                    var run = await extent.MapAsync(offset + done, back.Length - done, CancellationToken.None);
                    await extent.ReadDataAsync(offset + done, back.AsMemory(done, (int)run.LengthBytes), run, CancellationToken.None);
                    done += (int)run.LengthBytes;
                }

                Assert.Equal(model.AsSpan((int)offset, data.Length).ToArray(), back);
            }
        }

        await using IImage reader = await OpenAsync(path);
        Assert.Equal(model, await ReadAllAsync(reader));
    }

    private static async Task Write(IBlockDevice image, byte[] model, long offset, byte[] data)
    {
        await image.WriteAsync(offset, data);
        data.CopyTo(model, offset);
    }
}

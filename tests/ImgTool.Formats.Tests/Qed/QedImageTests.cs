using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats.Qed;
using ImgTool.Formats.Tests.Qcow2;
using static ImgTool.Formats.Tests.Qed.QedTestImages;

namespace ImgTool.Formats.Tests.Qed;

/// <summary>Round trips through the QED driver on in-memory files: layout, zero clusters, backing files, need-check, check.</summary>
public sealed class QedImageTests
{
    private const int KiB = 1024;
    private const int MiB = 1024 * 1024;

    [Fact]
    public void The_header_is_64_bytes_and_round_trips()
    {
        Assert.Equal(64, QedHeader.SizeBytes);
        var header = new QedHeader(65536, 4, 1, QedFeatures.BackingFile | QedFeatures.BackingFormatNoProbe, 7, 9, 65536, 1 << 30, 64, 8);
        byte[] raw = header.ToBytes();
        Assert.Equal("QED\0"u8.ToArray(), raw[..4]);
        Assert.Equal(header, QedHeader.Read(raw));
    }

    [Fact]
    public async Task Create_lays_out_header_then_L1_as_qemu_does()
    {
        SharedHostFile file = await CreateInMemoryAsync(64 * MiB);
        QedHeader header = await ReadHeaderAsync(file);
        Assert.Equal(65536u, header.ClusterSize);
        Assert.Equal(4u, header.TableSize);
        Assert.Equal(1u, header.HeaderClusters);
        Assert.Equal(65536ul, header.L1TableOffset);
        Assert.Equal(QedFeatures.None, header.Features);
        Assert.Equal(65536 + (4 * 65536), file.Length);
        Assert.Equal(100, QedFormat.Instance.Probe(new ProbeInput(header.ToBytes(), [], file.Length, "x.qed")));
    }

    [Fact]
    public async Task Create_rounds_the_size_up_to_a_sector_and_keeps_the_backing_name_after_the_header()
    {
        SharedHostFile file = await CreateInMemoryAsync(1000, "cluster_size=4096,table_size=2", "base.raw", "raw");
        QedHeader header = await ReadHeaderAsync(file);
        Assert.Equal(1024ul, header.ImageSize);
        Assert.Equal(QedFeatures.BackingFile | QedFeatures.BackingFormatNoProbe, header.Features);
        Assert.Equal(64u, header.BackingFileNameOffset);
        Assert.Equal(8u, header.BackingFileNameSize);
        await using IImage image = await OpenAsync(file, readOnly: true);
        var chain = (IBackingChain)image;
        Assert.Equal("base.raw", chain.BackingFileName);
        Assert.Equal("raw", chain.BackingFormat);
    }

    [Fact]
    public async Task A_non_raw_backing_format_is_not_stored_and_is_probed_again()
    {
        SharedHostFile file = await CreateInMemoryAsync(MiB, "", "base.qcow2", "qcow2");
        Assert.Equal(QedFeatures.BackingFile, (await ReadHeaderAsync(file)).Features);
        await using IImage image = await OpenAsync(file, readOnly: true);
        Assert.Null(((IBackingChain)image).BackingFormat);
    }

    [Theory]
    [InlineData("cluster_size=2048")]
    [InlineData("cluster_size=3000")]
    [InlineData("cluster_size=128M")]
    [InlineData("table_size=0")]
    [InlineData("table_size=3")]
    [InlineData("table_size=32")]
    public async Task Create_refuses_options_outside_qemus_limits(string options)
    {
        await Assert.ThrowsAsync<InvalidOptionException>(async () => await CreateInMemoryAsync(MiB, options));
    }

    [Fact]
    public async Task Create_refuses_a_size_beyond_what_the_tables_map()
    {
        // 4 KiB clusters, one-cluster tables: 512 entries, so 512 * 512 * 4 KiB = 1 GiB at most.
        await CreateInMemoryAsync(1L << 30, "cluster_size=4k,table_size=1");
        InvalidOptionException e = await Assert.ThrowsAsync<InvalidOptionException>(async () => await CreateInMemoryAsync((1L << 30) + 512, "cluster_size=4k,table_size=1"));
        Assert.Contains("less than 1073741824 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_refuses_sizes_qemu_cannot_open_where_its_limit_overflows()
    {
        // 8 MiB clusters, 2-cluster tables: the limit is 2^65, which QEMU computes as 0.
        await Assert.ThrowsAsync<InvalidOptionException>(async () => await CreateInMemoryAsync(MiB, "cluster_size=8M,table_size=2"));
    }

    [Fact]
    public async Task Create_refuses_a_backing_name_that_does_not_fit_the_header()
    {
        await Assert.ThrowsAsync<InvalidOptionException>(async () => await CreateInMemoryAsync(MiB, "cluster_size=4k", new string('a', 4096 - 63), "raw"));
        await CreateInMemoryAsync(MiB, "cluster_size=4k", new string('a', 4096 - 64), "raw");
    }

    [Theory]
    [InlineData("cluster_size=4k,table_size=1")]
    [InlineData("cluster_size=4k,table_size=16")]
    [InlineData("")]
    [InlineData("cluster_size=1M,table_size=2")]
    public async Task Writes_read_back_across_clusters_and_L2_tables(string options)
    {
        long size = 9 * MiB + 512;
        SharedHostFile file = await CreateInMemoryAsync(size, options);
        byte[] model = new byte[size];
        var random = new Random(1);
        await using (IImage image = await OpenAsync(file))
        {
            foreach ((long offset, int length) in new[] { (0L, 100), (4095L, 2), (3 * MiB - 7, 2 * MiB + 13), (size - 700, 700), (5 * MiB, 64 * KiB) })
            {
                byte[] data = new byte[length];
                random.NextBytes(data);
                data.CopyTo(model, offset);
                await image.WriteAsync(offset, data);
            }

            Assert.Equal(model, await ReadAllAsync(image));
        }

        await using IImage reopened = await OpenAsync(file, readOnly: true);
        Assert.Equal(model, await ReadAllAsync(reopened));
        CheckReport report = await ((ICheckable)reopened).CheckAsync(CheckRepair.None);
        Assert.Equal((0L, 0L, 0L), (report.Corruptions, report.Leaks, report.CheckErrors));
    }

    [Fact]
    public async Task Zero_writes_make_zero_clusters_that_hide_the_backing_file()
    {
        (byte[] data, var openBacking) = await RawBackingAsync(4 * MiB, 2);
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB, "cluster_size=64k", "base.raw", "raw");
        byte[] model = (byte[])data.Clone();
        await using IImage image = await OpenAsync(file, backing: openBacking);
        long before = file.Length;
        await image.WriteZeroesAsync(MiB, MiB, BlockZeroFlags.None);
        Array.Clear(model, MiB, MiB);

        // Aligned zeros allocate no data: only the new L2 table (4 clusters) grows the file.
        Assert.Equal(before + (4 * 64 * KiB), file.Length);
        BlockStatus status = await image.GetStatusAsync(MiB, MiB);
        Assert.Equal(BlockStatusKind.Zero, status.Kind);
        Assert.Equal(MiB, status.LengthBytes);

        // Unaligned ends are written as data; the backing file shows around them.
        await image.WriteZeroesAsync((3 * MiB) + 100, 5000, BlockZeroFlags.None);
        Array.Clear(model, (3 * MiB) + 100, 5000);
        Assert.Equal(model, await ReadAllAsync(image));
        Assert.Equal(BlockStatusKind.Unallocated, (await image.GetStatusAsync(0, MiB)).Kind);
        Assert.Equal(BlockStatusKind.Data, (await image.GetStatusAsync(3 * MiB, 4096)).Kind);
    }

    [Fact]
    public async Task A_partial_write_over_a_backing_file_copies_the_rest_of_the_cluster_from_it()
    {
        (byte[] data, var openBacking) = await Qcow2BackingAsync(2 * MiB, 3);
        SharedHostFile file = await CreateInMemoryAsync(2 * MiB, "cluster_size=64k", "base.qcow2", "qcow2");
        byte[] model = (byte[])data.Clone();
        await using (IImage image = await OpenAsync(file, backing: openBacking))
        {
            byte[] write = Enumerable.Repeat((byte)0x5a, 1000).ToArray();
            write.CopyTo(model, 600_000);
            await image.WriteAsync(600_000, write);
            Assert.Equal(model, await ReadAllAsync(image));

            // With a backing file QEMU flushes before linking instead of setting need-check.
            Assert.False((await ReadHeaderAsync(file)).Has(QedFeatures.NeedCheck));
        }

        await using IImage reopened = await OpenAsync(file, readOnly: true, backing: openBacking);
        Assert.Equal(model, await ReadAllAsync(reopened));
    }

    [Fact]
    public async Task Need_check_is_set_while_allocating_and_cleared_on_a_clean_close()
    {
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB);
        IImage image = await OpenAsync(file);
        Assert.False((await ReadHeaderAsync(file)).Has(QedFeatures.NeedCheck));
        await image.WriteAsync(0, new byte[4096]);
        Assert.True((await ReadHeaderAsync(file)).Has(QedFeatures.NeedCheck));
        Assert.True(((QedImage)image).NeedsCheck);
        await image.DisposeAsync();
        Assert.False((await ReadHeaderAsync(file)).Has(QedFeatures.NeedCheck));
    }

    [Fact]
    public async Task Opening_a_dirty_image_for_writing_checks_it_repairs_invalid_entries_and_marks_it_clean()
    {
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB, "cluster_size=4k");
        await using (IImage image = await OpenAsync(file))
        {
            await image.WriteAsync(0, new byte[] { 1, 2, 3 });
        }

        // A crash mid-allocation: need-check set, and an L2 entry naming a cluster past the end of the file.
        QedHeader header = await ReadHeaderAsync(file);
        long l2 = await ReadEntryAsync(file, (long)header.L1TableOffset);
        await WriteEntryAsync(file, l2 + 8, 1L << 40);
        await WriteHeaderAsync(file, header with { Features = header.Features | QedFeatures.NeedCheck });

        // Read-only opens leave it as it is, and reading the bad cluster is a clear error.
        await using (IImage readOnly = await OpenAsync(file, readOnly: true))
        {
            await Assert.ThrowsAsync<ImageCorruptException>(async () => await readOnly.ReadAsync(4096, new byte[10]));
        }

        await using (IImage writable = await OpenAsync(file))
        {
            Assert.False((await ReadHeaderAsync(file)).Has(QedFeatures.NeedCheck));
            Assert.Equal(0, await ReadEntryAsync(file, l2 + 8));
            byte[] back = new byte[8192];
            await writable.ReadAsync(0, back);
            Assert.Equal(new byte[] { 1, 2, 3 }, back[..3]);
        }
    }

    [Fact]
    public async Task Check_counts_leaks_and_repair_leaves_them_as_qemu_does()
    {
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB);
        await using (IImage image = await OpenAsync(file))
        {
            await image.WriteAsync(0, new byte[65536]);
        }

        file.SetLength(file.Length + (2 * 65536));
        await using IImage reopened = await OpenAsync(file, checking: true);
        CheckReport report = await ((ICheckable)reopened).CheckAsync(CheckRepair.All);
        Assert.Equal(2, report.Leaks);
        Assert.Equal(0, report.LeaksFixed);
        Assert.Equal(64, report.TotalClusters);
        Assert.Equal(1, report.AllocatedClusters);
    }

    [Fact]
    public async Task Check_reports_invalid_entries_and_repair_clears_them()
    {
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB, "cluster_size=4k");
        await using (IImage image = await OpenAsync(file))
        {
            await image.WriteAsync(0, new byte[8192]);
        }

        QedHeader header = await ReadHeaderAsync(file);
        long l2 = await ReadEntryAsync(file, (long)header.L1TableOffset);
        await WriteEntryAsync(file, l2 + 16, 4096 + 17);                      // unaligned
        await WriteEntryAsync(file, (long)header.L1TableOffset + 8, 1L << 40); // L2 table past the end
        await using (IImage image = await OpenAsync(file, readOnly: true))
        {
            CheckReport report = await ((ICheckable)image).CheckAsync(CheckRepair.None);
            Assert.Equal(2, report.Corruptions);
        }

        await using (IImage image = await OpenAsync(file, checking: true))
        {
            CheckReport repaired = await ((ICheckable)image).CheckAsync(CheckRepair.All);
            Assert.Equal((0L, 2L), (repaired.Corruptions, repaired.CorruptionsFixed));
            CheckReport again = await ((ICheckable)image).CheckAsync(CheckRepair.None);
            Assert.Equal((0L, 0L), (again.Corruptions, again.Leaks));
        }
    }

    [Fact]
    public async Task An_L2_table_referenced_twice_is_a_corruption_that_stays()
    {
        SharedHostFile file = await CreateInMemoryAsync(8 * MiB, "cluster_size=4k,table_size=1");
        await using (IImage image = await OpenAsync(file))
        {
            await image.WriteAsync(0, new byte[4096]);
        }

        QedHeader header = await ReadHeaderAsync(file);
        long l2 = await ReadEntryAsync(file, (long)header.L1TableOffset);
        await WriteEntryAsync(file, (long)header.L1TableOffset + 8, l2);
        await using IImage damaged = await OpenAsync(file, checking: true);
        CheckReport report = await ((ICheckable)damaged).CheckAsync(CheckRepair.All);
        Assert.Equal(1, report.Corruptions);
        Assert.Equal(0, report.CorruptionsFixed);
    }
}

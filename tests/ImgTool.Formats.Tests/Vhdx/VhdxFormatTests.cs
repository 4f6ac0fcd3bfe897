using System.Buffers.Binary;
using System.Text;
using FsCheck.Xunit;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats.Vhdx;

namespace ImgTool.Formats.Tests.Vhdx;

public sealed class VhdxFormatTests : IDisposable
{
    private const long MiB = 1 << 20;
    private readonly TempDir _dir = new();
    private readonly ImageOpener _opener = new(FormatRegistry.Default);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Crc32C_is_castagnoli()
    {
        // The standard check value of CRC-32C for "123456789".
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
        byte[] data = new byte[64];
        new Random(1).NextBytes(data);
        Crc32C.Stamp(data, 4);
        Assert.True(Crc32C.Verify(data, 4));
        data[10] ^= 1;
        Assert.False(Crc32C.Verify(data, 4));
    }

    [Fact]
    public void Header_layout_matches_the_spec_and_round_trips()
    {
        Assert.Equal(80, VhdxHeader.DefinedBytes);
        Assert.Equal(32, VhdxRegion.SizeBytes);
        Assert.Equal(64, VhdxLog.HeaderBytes);
        var header = new VhdxHeader(7, Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), 0, 1, (uint)MiB, (ulong)MiB);
        byte[] block = new byte[VhdxHeader.SizeBytes];
        header.Write(block);
        Assert.Equal("head", Encoding.ASCII.GetString(block, 0, 4));
        Assert.Equal(header, VhdxHeader.TryRead(block));
        block[100] = 1; // reserved bytes are under the checksum too
        Assert.Null(VhdxHeader.TryRead(block));
    }

    [Theory]
    [InlineData(64 * MiB, 8 * MiB, false, 8)]
    [InlineData(2L << 30, 16 * MiB, false, 128)]
    [InlineData(64 * MiB, MiB, false, 64)]
    [InlineData(5000 * MiB, MiB, false, 5000 + 1)]
    [InlineData(64 * MiB, 8 * MiB, true, 512 + 1)]
    public void Bat_geometry_interleaves_sector_bitmap_entries(long size, long block, bool parent, long entries)
    {
        var g = new VhdxBatGeometry(size, block, 512, parent);
        Assert.Equal(entries, g.TotalEntries);
        Assert.Equal(g.ChunkRatio, g.BitmapIndex(0));
        Assert.Equal(g.ChunkRatio + 1, g.PayloadIndex(g.ChunkRatio));
    }

    [Theory]
    [InlineData("dynamic", "on")]
    [InlineData("dynamic", "off")]
    [InlineData("fixed", "on")]
    public async Task Writes_read_back_after_reopen(string subformat, string zero)
    {
        string path = _dir.File($"{subformat}-{zero}.vhdx");
        await Create(path, 40 * MiB, $"subformat={subformat}", $"block_state_zero={zero}", "block_size=1M");
        byte[] model = new byte[40 * MiB];
        await using (IImage image = await _opener.OpenAsync(path, new ImageOpenRequest(ReadOnly: false)))
        {
            Assert.Equal("vhdx", image.FormatName);
            Assert.Equal(MiB, image.Details.ClusterSizeBytes);
            await WriteBoth(image, model, 3 * MiB + 100, 70000, 1);
            await WriteBoth(image, model, 39 * MiB, (int)MiB, 2);
            await image.WriteZeroesAsync(3 * MiB, MiB, BlockZeroFlags.MayUnmap);
            model.AsSpan((int)(3 * MiB), (int)MiB).Clear();
        }

        await using IImage reader = await _opener.OpenAsync(path, new ImageOpenRequest());
        byte[] back = new byte[model.Length];
        await reader.ReadAsync(0, back);
        Assert.Equal(model, back);
        BlockStatus status = await reader.GetStatusAsync(39 * MiB, MiB);
        Assert.Equal(BlockStatusKind.Data, status.Kind);
        Assert.Equal(0, (await ((ICheckable)reader).CheckAsync(CheckRepair.None)).Corruptions);
    }

    [Fact]
    public async Task Block_status_tells_unallocated_zero_and_data_apart()
    {
        string path = _dir.File("status.vhdx");
        await Create(path, 16 * MiB, "block_size=1M", "block_state_zero=off");
        await using (IImage image = await _opener.OpenAsync(path, new ImageOpenRequest(ReadOnly: false)))
        {
            await image.WriteAsync(2 * MiB, new byte[] { 1, 2, 3 });
            await image.WriteZeroesAsync(5 * MiB, 2 * MiB, BlockZeroFlags.None);
        }

        await using IImage reader = await _opener.OpenAsync(path, new ImageOpenRequest());
        Assert.Equal(new BlockStatus(BlockStatusKind.Unallocated, 2 * MiB, Allocated: false), await reader.GetStatusAsync(0, 16 * MiB));
        BlockStatus data = await reader.GetStatusAsync(2 * MiB, 14 * MiB);
        Assert.Equal(BlockStatusKind.Data, data.Kind);
        Assert.Equal(4096, data.LengthBytes); // only the written page is data in the host file
        Assert.True(data.HostOffsetBytes >= 3 * MiB);
        Assert.Equal(BlockStatusKind.Zero, (await reader.GetStatusAsync((2 * MiB) + 4096, MiB - 4096)).Kind);
        Assert.Equal(new BlockStatus(BlockStatusKind.Zero, 2 * MiB), await reader.GetStatusAsync(5 * MiB, 11 * MiB));
    }

    /// <summary>Random writes and zeroes against a model, reopen, compare (the issue's property test).</summary>
    [Property(MaxTest = 20)]
    public bool Random_writes_and_zeroes_match_a_model(byte[] ops, bool fixedFormat)
    {
        return Run().GetAwaiter().GetResult();

        async Task<bool> Run()
        {
            const long size = 6 * MiB + 4096;
            var file = new MemoryHostFile("prop.vhdx");
            await VhdxFormat.Instance.CreateAsync(file, new ImageCreateRequest(size, ImageOptions.Parse([$"subformat={(fixedFormat ? "fixed" : "dynamic")}", "block_size=1M"])));
            byte[] model = new byte[size];
            var random = new Random(ops.Length);
            await using (IImage image = await VhdxFormat.Instance.OpenAsync(file, new ImageOpenContext(false, null)))
            {
                foreach (byte op in ops.Take(24))
                {
                    long offset = random.NextInt64(size - 1);
                    int length = (int)Math.Min(size - offset, 1 + random.Next(op % 2 == 0 ? 300_000 : 3 * (int)MiB));
                    if (op % 3 == 0)
                    {
                        await image.WriteZeroesAsync(offset, length, op % 2 == 0 ? BlockZeroFlags.MayUnmap : BlockZeroFlags.None);
                        model.AsSpan((int)offset, length).Clear();
                    }
                    else
                    {
                        await WriteBoth(image, model, offset, length, op);
                    }
                }
            }

            await using IImage reader = await VhdxFormat.Instance.OpenAsync(file, new ImageOpenContext(true, null));
            byte[] back = new byte[size];
            await reader.ReadAsync(0, back);
            CheckReport report = await ((ICheckable)reader).CheckAsync(CheckRepair.None);
            return back.AsSpan().SequenceEqual(model) && report.Corruptions == 0;
        }
    }

    [Fact]
    public async Task Concurrent_writes_to_fresh_blocks_all_land()
    {
        string path = _dir.File("concurrent.vhdx");
        await Create(path, 32 * MiB, "block_size=1M");
        byte[] model = new byte[32 * MiB];
        await using (IImage image = await _opener.OpenAsync(path, new ImageOpenRequest(ReadOnly: false)))
        {
            // 64 KiB pieces in a shuffled order, many per block, all in flight at once.
            int[] order = [.. Enumerable.Range(0, 512).OrderBy(i => (i * 7919) % 512)];
            await Task.WhenAll(order.Select(i => WriteBoth(image, model, i * 65536L, 65536, i)));
        }

        await using IImage reader = await _opener.OpenAsync(path, new ImageOpenRequest());
        byte[] back = new byte[model.Length];
        await reader.ReadAsync(0, back);
        Assert.Equal(model, back);
        Assert.Equal(0, (await ((ICheckable)reader).CheckAsync(CheckRepair.None)).Corruptions);
    }

    [Fact]
    public async Task A_differencing_image_reads_through_to_its_parent_and_copies_up_on_write()
    {
        string parentPath = _dir.File("parent.vhdx");
        string childPath = _dir.File("child.vhdx");
        await Create(parentPath, 8 * MiB, "block_size=1M");
        byte[] model = new byte[8 * MiB];
        await using (IImage parent = await _opener.OpenAsync(parentPath, new ImageOpenRequest(ReadOnly: false)))
        {
            await WriteBoth(parent, model, 0, 3 * (int)MiB, 5);
        }

        await ImageFactory.CreateAsync(childPath, VhdxFormat.Instance, new ImageCreateRequest(8 * MiB, ImageOptions.Parse(["block_size=1M"]), "parent.vhdx", "vhdx"));
        await using (IImage child = await _opener.OpenAsync(childPath, new ImageOpenRequest(ReadOnly: false)))
        {
            Assert.Equal("parent.vhdx", ((IBackingChain)child).BackingFileName);
            await WriteBoth(child, model, MiB + 10, 1000, 6);
            await WriteBoth(child, model, 5 * MiB, 1000, 7);
        }

        await using (IImage reader = await _opener.OpenAsync(childPath, new ImageOpenRequest()))
        {
            byte[] back = new byte[model.Length];
            await reader.ReadAsync(0, back);
            Assert.Equal(model, back);
            Assert.Equal(BlockStatusKind.Unallocated, (await reader.GetStatusAsync(0, MiB)).Kind);
            Assert.Equal(BlockStatusKind.Data, (await reader.GetStatusAsync(MiB, MiB)).Kind);
            Assert.Equal(1, (await BackingChainStatus.GetAsync(reader, 0, MiB)).Depth);
        }

        // The parent changes behind the child's back: the linkage GUID no longer matches.
        await using (IImage parent = await _opener.OpenAsync(parentPath, new ImageOpenRequest(ReadOnly: false)))
        {
            await parent.WriteAsync(0, new byte[] { 9 });
        }

        var e = await Assert.ThrowsAsync<BackingFileException>(async () => await _opener.OpenAsync(childPath, new ImageOpenRequest()));
        Assert.Contains("has changed", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dirty_log_is_replayed_in_memory_read_only_and_into_the_file_read_write()
    {
        string path = _dir.File("dirty.vhdx");
        byte[] model = await CrashedImage(path);

        await using (IImage reader = await _opener.OpenAsync(path, new ImageOpenRequest()))
        {
            Assert.True(reader.Details.DirtyFlag);
            byte[] back = new byte[model.Length];
            await reader.ReadAsync(0, back);
            Assert.Equal(model, back);
            Assert.Equal(1, (await ((ICheckable)reader).CheckAsync(CheckRepair.None)).Corruptions);
        }

        await using (IImage writer = await _opener.OpenAsync(path, new ImageOpenRequest(ReadOnly: false)))
        {
            Assert.Equal(1, (await ((ICheckable)writer).CheckAsync(CheckRepair.All)).CorruptionsFixed);
        }

        await using IImage clean = await _opener.OpenAsync(path, new ImageOpenRequest());
        Assert.False(clean.Details.DirtyFlag);
        byte[] again = new byte[model.Length];
        await clean.ReadAsync(0, again);
        Assert.Equal(model, again);
    }

    [Fact]
    public async Task Qemu_replays_a_log_imgtool_wrote()
    {
        string path = _dir.File("dirty-for-qemu.vhdx");
        byte[] model = await CrashedImage(path);
        string raw = _dir.File("model.raw");
        await File.WriteAllBytesAsync(raw, model);

        // qemu-img opens read-write for check -r all, which replays the log.
        var (code, output) = await Run("qemu-img", "check", "-r", "all", path);
        Assert.True(code == 0, output);
        (code, output) = await Run("qemu-img", "compare", "-f", "vhdx", "-F", "raw", path, raw);
        Assert.True(code == 0, output);
    }

    /// <summary>Hyper-V writes differencing blocks as PARTIALLY_PRESENT with a sector bitmap (spec 3.4.2):
    /// set sectors come from the child, the others from the parent; a write turns the block fully present.</summary>
    [Fact]
    public async Task Partially_present_blocks_read_through_their_sector_bitmap()
    {
        string parentPath = _dir.File("p.vhdx");
        string childPath = _dir.File("c.vhdx");
        await Create(parentPath, 4 * MiB, "block_size=1M");
        byte[] model = new byte[4 * MiB];
        await using (IImage parent = await _opener.OpenAsync(parentPath, new ImageOpenRequest(ReadOnly: false)))
        {
            await WriteBoth(parent, model, 0, 4 * (int)MiB, 11);
        }

        await ImageFactory.CreateAsync(childPath, VhdxFormat.Instance, new ImageCreateRequest(4 * MiB, ImageOptions.Parse(["block_size=1M"]), "p.vhdx", "vhdx"));

        // Block 1 at 8 MiB of the file: sectors 0-7 and 100 present; the bitmap block at 9 MiB.
        byte[] bytes = await File.ReadAllBytesAsync(childPath);
        (long batOffset, _) = Regions(bytes);
        Array.Resize(ref bytes, 10 * (int)MiB);
        byte[] childData = new byte[MiB];
        new Random(12).NextBytes(childData);
        childData.CopyTo(bytes, 8 * MiB);
        var g = new VhdxBatGeometry(4 * MiB, MiB, 512, hasParent: true);
        long bitmapStart = (9 * MiB) + (1 * g.SectorsPerBlock / 8);
        bytes[bitmapStart] = 0xff;
        bytes[bitmapStart + (100 / 8)] |= 1 << (100 % 8);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((int)(batOffset + (g.PayloadIndex(1) * 8))), VhdxBatGeometry.Entry(VhdxBlockState.PartiallyPresent, 8 * MiB));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((int)(batOffset + (g.BitmapIndex(0) * 8))), VhdxBatGeometry.Entry(VhdxBlockState.FullyPresent, 9 * MiB));
        await File.WriteAllBytesAsync(childPath, bytes);
        childData.AsSpan(0, 8 * 512).CopyTo(model.AsSpan((int)MiB));
        childData.AsSpan(100 * 512, 512).CopyTo(model.AsSpan((int)MiB + (100 * 512)));

        await using (IImage child = await _opener.OpenAsync(childPath, new ImageOpenRequest()))
        {
            byte[] back = new byte[model.Length];
            await child.ReadAsync(0, back);
            Assert.Equal(model, back);
            Assert.Equal(new BlockStatus(BlockStatusKind.Data, 8 * 512, 8 * MiB), await child.GetStatusAsync(MiB, MiB));
            Assert.Equal(new BlockStatus(BlockStatusKind.Unallocated, 92 * 512, Allocated: false), await child.GetStatusAsync(MiB + (8 * 512), MiB - (8 * 512)));
            Assert.Equal(0, (await ((ICheckable)child).CheckAsync(CheckRepair.None)).Corruptions);
        }

        await using (IImage child = await _opener.OpenAsync(childPath, new ImageOpenRequest(ReadOnly: false)))
        {
            await WriteBoth(child, model, MiB + 50_000, 3000, 13);
        }

        await using IImage again = await _opener.OpenAsync(childPath, new ImageOpenRequest());
        byte[] after = new byte[model.Length];
        await again.ReadAsync(0, after);
        Assert.Equal(model, after);
        Assert.Equal(BlockStatusKind.Data, (await again.GetStatusAsync(MiB, MiB)).Kind);
    }

    /// <summary>4 KiB logical sectors (as Hyper-V may write) change the chunk ratio; the data reads the same.</summary>
    [Fact]
    public async Task Images_with_4k_logical_sectors_read()
    {
        string path = _dir.File("4k.vhdx");
        await Create(path, 16 * MiB, "block_size=1M");
        byte[] model = new byte[16 * MiB];
        await using (IImage image = await _opener.OpenAsync(path, new ImageOpenRequest(ReadOnly: false)))
        {
            await WriteBoth(image, model, 3 * MiB, 2 * (int)MiB, 21);
        }

        byte[] bytes = await File.ReadAllBytesAsync(path);
        (_, long metadataOffset) = Regions(bytes);
        List<VhdxMetadataEntry> entries = VhdxMetadataTable.ReadEntries(bytes.AsSpan((int)metadataOffset, VhdxMetadataTable.TableBytes), (uint)MiB, path);
        foreach (Guid id in new[] { VhdxMetadataTable.LogicalSectorSize, VhdxMetadataTable.PhysicalSectorSize })
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan((int)(metadataOffset + entries.Single(e => e.ItemId == id).OffsetBytes)), 4096);
        }

        await File.WriteAllBytesAsync(path, bytes);
        await using (IImage image = await _opener.OpenAsync(path, new ImageOpenRequest()))
        {
            Assert.Equal(4096, image.Alignment);
            byte[] back = new byte[model.Length];
            await image.ReadAsync(0, back);
            Assert.Equal(model, back);
        }

        // qemu-img 7.2 refuses 4 KiB logical sectors ("Operation not supported"); Hyper-V writes them.
        var (code, _) = await Run("qemu-img", "info", path);
        Assert.NotEqual(0, code);
    }

    [Fact]
    public async Task A_log_entry_that_writes_outside_the_file_is_refused()
    {
        string path = _dir.File("badlog.vhdx");
        await CrashedImage(path);
        byte[] bytes = await File.ReadAllBytesAsync(path);
        // The first descriptor's file offset (log at 1 MiB, entry at its start) pointed far past the file.
        int descriptor = (int)VhdxLayout.HeaderSectionEnd + VhdxLog.HeaderBytes;
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(descriptor + VhdxLog.DescFileOffsetOffset), 1UL << 45);
        byte[] entry = bytes.AsSpan((int)VhdxLayout.HeaderSectionEnd, 2 * VhdxLog.SectorBytes).ToArray();
        Crc32C.Stamp(entry, VhdxLog.ChecksumOffset);
        entry.CopyTo(bytes, (int)VhdxLayout.HeaderSectionEnd);
        await File.WriteAllBytesAsync(path, bytes);
        var e = await Assert.ThrowsAsync<ImageCorruptException>(async () => await _opener.OpenAsync(path, new ImageOpenRequest()));
        Assert.Contains("outside the file", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ImageCorruptException>(async () => await _opener.OpenAsync(path, new ImageOpenRequest(ReadOnly: false)));
    }

    [Theory]
    [InlineData("header checksums", "both headers are damaged")]
    [InlineData("region tables", "both region tables are damaged")]
    [InlineData("log outside the file", "the log at")]
    [InlineData("block size", "block size")]
    [InlineData("metadata entry count", "metadata table has")]
    [InlineData("BAT offset past the file", "outside the file")]
    [InlineData("metadata item outside the region", "lies outside the metadata region")]
    [InlineData("huge virtual size", "too small")]
    [InlineData("huge virtual size and BAT region", "reaches past the end of the file")]
    public async Task Hostile_images_give_clear_errors(string damage, string message)
    {
        string path = _dir.File("hostile.vhdx");
        await Create(path, 16 * MiB, "block_size=1M");
        await using (IImage image = await _opener.OpenAsync(path, new ImageOpenRequest(ReadOnly: false)))
        {
            await image.WriteAsync(0, new byte[] { 1 });
        }

        byte[] bytes = await File.ReadAllBytesAsync(path);
        (long batOffset, long metadataOffset) = Regions(bytes);
        switch (damage)
        {
            case "header checksums":
                bytes[(int)VhdxLayout.Header1Offset + 20] ^= 1;
                bytes[(int)VhdxLayout.Header2Offset + 20] ^= 1;
                break;
            case "region tables":
                bytes[(int)VhdxLayout.RegionTable1Offset + 40] ^= 1;
                bytes[(int)VhdxLayout.RegionTable2Offset + 40] ^= 1;
                break;
            case "log outside the file":
                foreach (long at in new[] { VhdxLayout.Header1Offset, VhdxLayout.Header2Offset })
                {
                    Span<byte> h = bytes.AsSpan((int)at, VhdxHeader.SizeBytes);
                    BinaryPrimitives.WriteUInt64LittleEndian(h[VhdxHeader.LogOffsetOffset..], 1UL << 40);
                    Crc32C.Stamp(h, VhdxHeader.ChecksumOffset);
                }

                break;
            case "block size":
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan((int)metadataOffset + VhdxMetadataTable.FirstItemOffset), 3 * (uint)MiB);
                break;
            case "metadata entry count":
                BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan((int)metadataOffset + VhdxMetadataTable.EntryCountOffset), 60000);
                break;
            case "BAT offset past the file":
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((int)batOffset), (0xFFFFFFFFFFFUL << 20) | 6);
                break;
            case "huge virtual size":
            case "huge virtual size and BAT region":
                if (damage.EndsWith("region", StringComparison.Ordinal))
                {
                    foreach (long at in new[] { VhdxLayout.RegionTable1Offset, VhdxLayout.RegionTable2Offset })
                    {
                        Span<byte> table = bytes.AsSpan((int)at, VhdxRegionTable.SizeBytes);
                        var regions = VhdxRegionTable.TryRead(table)!;
                        VhdxRegionTable.Write(table, [.. regions.Select(r => r.Id == VhdxRegionTable.BatRegion ? r with { LengthBytes = 128 * (uint)MiB } : r)]);
                    }
                }

                List<VhdxMetadataEntry> entries = VhdxMetadataTable.ReadEntries(bytes.AsSpan((int)metadataOffset, VhdxMetadataTable.TableBytes), (uint)MiB, path);
                long sizeItem = metadataOffset + entries.Single(e => e.ItemId == VhdxMetadataTable.VirtualDiskSize).OffsetBytes;
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((int)sizeItem), 8UL << 40);
                break;
            case "metadata item outside the region":
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan((int)metadataOffset + VhdxMetadataTable.EntriesOffset + VhdxMetadataEntry.OffsetOffset), 0xFFFF0000);
                break;
        }

        await File.WriteAllBytesAsync(path, bytes);
        var e = await Assert.ThrowsAnyAsync<ImgToolException>(async () =>
        {
            await using IImage image = await _opener.OpenAsync(path, new ImageOpenRequest());
            await image.ReadAsync(0, new byte[4096]);
        });
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_finds_overlapping_blocks_and_entries_past_the_end()
    {
        string path = _dir.File("overlap.vhdx");
        await Create(path, 16 * MiB, "block_size=1M");
        await using (IImage image = await _opener.OpenAsync(path, new ImageOpenRequest(ReadOnly: false)))
        {
            await image.WriteAsync(0, new byte[] { 1 });
        }

        byte[] bytes = await File.ReadAllBytesAsync(path);
        (long batOffset, _) = Regions(bytes);
        ulong first = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan((int)batOffset));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((int)batOffset + 8), first);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((int)batOffset + 16), (1000UL << 20) | 6);
        await File.WriteAllBytesAsync(path, bytes);
        await using IImage reader = await _opener.OpenAsync(path, new ImageOpenRequest());
        CheckReport report = await ((ICheckable)reader).CheckAsync(CheckRepair.None);
        Assert.Equal(2, report.Corruptions);
        Assert.Contains(report.Findings, f => f.Message.Contains("overlaps", StringComparison.Ordinal));
        Assert.Contains(report.Findings, f => f.Message.Contains("past the end", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("block_size=3M", "power of two")]
    [InlineData("subformat=weird", "subformat")]
    [InlineData("log_size=5G", "log size")]
    public async Task Bad_create_options_are_refused(string option, string message)
    {
        string path = _dir.File("bad.vhdx");
        var e = await Assert.ThrowsAsync<InvalidOptionException>(async () =>
            await ImageFactory.CreateAsync(path, VhdxFormat.Instance, new ImageCreateRequest(MiB, ImageOptions.Parse([option]))));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    /// <summary>An image whose last BAT update reached the log but not its place: the BAT on disk is
    /// reverted to the pre-write state and the header names the log, as after a crash.</summary>
    private async Task<byte[]> CrashedImage(string path)
    {
        await Create(path, 8 * MiB, "block_size=1M");
        byte[] before = await File.ReadAllBytesAsync(path);
        byte[] model = new byte[8 * MiB];
        var file = LinuxHostFile.Open(path, new HostOpenOptions(ReadOnly: false));
        IImage image = await VhdxFormat.Instance.OpenAsync(file, new ImageOpenContext(false, null));
        await WriteBoth(image, model, 2 * MiB + 5, 5000, 3);
        await image.FlushAsync();
        (long batOffset, _) = Regions(before);
        byte[] bytes = await File.ReadAllBytesAsync(path);
        file.Dispose(); // no DisposeAsync: the session's LogGuid stays in the header, as after a crash
        Array.Copy(before, batOffset, bytes, batOffset, 4096);
        await File.WriteAllBytesAsync(path, bytes);
        return model;
    }

    private static (long Bat, long Metadata) Regions(byte[] bytes)
    {
        var regions = VhdxRegionTable.TryRead(bytes.AsSpan((int)VhdxLayout.RegionTable1Offset, VhdxRegionTable.SizeBytes))!;
        return ((long)regions.Single(r => r.Id == VhdxRegionTable.BatRegion).FileOffsetBytes,
            (long)regions.Single(r => r.Id == VhdxRegionTable.MetadataRegion).FileOffsetBytes);
    }

    private static Task<(int Code, string Output)> Run(string tool, params string[] args) => ExternalTool.RunAsync(tool, args);

    private static Task Create(string path, long size, params string[] options) =>
        ImageFactory.CreateAsync(path, VhdxFormat.Instance, new ImageCreateRequest(size, ImageOptions.Parse(options))).AsTask();

    private static async Task WriteBoth(IImage image, byte[] model, long offset, int length, int seed)
    {
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        await image.WriteAsync(offset, data);
        data.CopyTo(model, offset);
    }
}

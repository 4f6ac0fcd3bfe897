using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats.Vhd;
using static ImgTool.Formats.Tests.Vhd.VhdTestSupport;

namespace ImgTool.Formats.Tests.Vhd;

public sealed class VhdImageTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ImageOpener _opener = new(FormatRegistry.Default);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_new_dynamic_disk_has_qemus_layout()
    {
        MemoryHostFile file = await CreateInMemory(100 * MiB);
        Assert.Equal(2560, file.Length); // footer copy, header, BAT (51 entries), footer
        byte[] bytes = ReadAll(file);
        Assert.Equal(bytes.AsSpan(0, 512).ToArray(), bytes.AsSpan(2048, 512).ToArray());
        await using IImage image = await Open(file);
        Assert.Equal(104865792, image.SizeBytes);
        Assert.Equal(2 << 20, image.Details.ClusterSizeBytes);
        Assert.Equal(new BlockStatus(BlockStatusKind.Zero, image.SizeBytes, Allocated: false), await image.GetStatusAsync(0, image.SizeBytes));
    }

    [Theory]
    [InlineData("subformat=dynamic")]
    [InlineData("subformat=fixed")]
    [InlineData("subformat=fixed,force_size=on")]
    public async Task Writes_read_back_after_reopen(string options)
    {
        MemoryHostFile file = await CreateInMemory(10 * MiB, options);
        byte[] data = Pattern(300_000, 1);
        await using (IImage image = await Open(file))
        {
            await image.WriteAsync(3 * MiB - 1000, data);
            await image.WriteAsync(17, new byte[] { 1, 2, 3 });
            await image.WriteZeroesAsync(3 * MiB, 4096, BlockZeroFlags.MayUnmap);
        }

        await using IImage reopened = await Open(file);
        byte[] back = new byte[data.Length];
        await reopened.ReadAsync(3 * MiB - 1000, back);
        Array.Clear(data, 1000, 4096);
        Assert.Equal(data, back);
        byte[] head = new byte[20];
        await reopened.ReadAsync(0, head);
        Assert.Equal(new byte[] { 1, 2, 3 }, head[17..20]);
        Assert.Equal(0, await CheckCorruptions(reopened));
    }

    [Fact]
    public async Task Fixed_disks_are_probed_by_the_footer_at_the_end_and_keep_their_exact_size()
    {
        string path = _dir.File("fixed.vhd");
        await ImageFactory.CreateAsync(path, VhdFormat.Instance, new ImageCreateRequest(10 * MiB, ImageOptions.Parse(["subformat=fixed,force_size=on"])));
        Assert.Equal(10 * MiB + 512, new FileInfo(path).Length);
        await using IImage image = await _opener.OpenAsync(path, new ImageOpenRequest());
        Assert.Equal("vpc", image.FormatName);
        Assert.Equal(10 * MiB, image.SizeBytes);
        Assert.Null(image.Details.ClusterSizeBytes);
    }

    [Fact]
    public async Task An_azure_creator_is_sized_by_current_size_not_chs()
    {
        // Azure writes creator "wa\0\0" with a 1 MiB-multiple current size that no CHS geometry matches.
        MemoryHostFile file = await CreateInMemory(30 * MiB, "subformat=fixed,force_size=on");
        PatchFooter(file, 30 * MiB, f =>
        {
            "wa\0\0"u8.CopyTo(f.AsSpan(VhdFooter.CreatorApplicationOffset));
            var (_, c, h, s) = VhdGeometry.ForCreate(30 * MiB - 4096, false, null);
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(VhdFooter.DiskGeometryOffset), c);
            f[VhdFooter.DiskGeometryOffset + 2] = h;
            f[VhdFooter.DiskGeometryOffset + 3] = s;
        });
        await using IImage image = await Open(file);
        Assert.Equal(30 * MiB, image.SizeBytes);
    }

    [Fact]
    public async Task A_bad_footer_copy_falls_back_to_the_other_and_two_bad_copies_are_refused()
    {
        MemoryHostFile file = await CreateInMemory(10 * MiB);
        PatchFooter(file, 0, f => f[200] = 1, fixChecksum: false);
        await using (IImage image = await Open(file))
        {
            Assert.True(image.SizeBytes >= 10 * MiB);
            Assert.False(((VhdImage)image).FooterAtHead);
            CheckReport report = await ((ICheckable)image).CheckAsync(CheckRepair.None);
            Assert.Contains(report.Findings, f => f.Structure == "footer");
        }

        PatchFooter(file, file.Length - 512, f => f[200] = 1, fixChecksum: false);
        var e = await Assert.ThrowsAsync<ImageCorruptException>(async () => await Open(file));
        Assert.Contains("checksum", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hostile_headers_give_typed_errors()
    {
        async Task Expect<T>(Action<MemoryHostFile> corrupt, string text)
            where T : Exception
        {
            MemoryHostFile file = await CreateInMemory(100 * MiB);
            corrupt(file);
            var e = await Assert.ThrowsAsync<T>(async () => await Open(file));
            Assert.Contains(text, e.Message, StringComparison.Ordinal);
        }

        await Expect<ImageCorruptException>(f => PatchHeader(f, h => BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(VhdDynamicHeader.BlockSizeOffset), 3000)), "block size");
        await Expect<ImageCorruptException>(f => PatchHeader(f, h => BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(VhdDynamicHeader.MaxTableEntriesOffset), 3)), "too few");
        await Expect<ImageCorruptException>(f => PatchHeader(f, h => BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(VhdDynamicHeader.MaxTableEntriesOffset), uint.MaxValue)), "entries");
        await Expect<ImageCorruptException>(f => PatchHeader(f, h => BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(VhdDynamicHeader.TableOffsetOffset), 1L << 40)), "outside the file");
        await Expect<ImageCorruptException>(f => PatchHeader(f, h => h[0] = (byte)'X'), "cxsparse");
        await Expect<ImageCorruptException>(f => { PatchFooter(f, 0, x => BinaryPrimitives.WriteUInt64BigEndian(x.AsSpan(VhdFooter.DataOffsetOffset), ulong.MaxValue - 5)); }, "outside the file");
        await Expect<UnsupportedFeatureException>(f => { PatchFooter(f, 0, x => x[VhdFooter.DiskTypeOffset + 3] = 9); }, "disk type");
        await Expect<ImageFormatException>(f => { PatchFooter(f, 0, x => BinaryPrimitives.WriteUInt64BigEndian(x.AsSpan(VhdFooter.CurrentSizeOffset), 1L << 50)); PatchFooter(f, 0, x => x[VhdFooter.CreatorApplicationOffset + 3] = (byte)'2'); }, "2040 GiB");
    }

    [Fact]
    public async Task A_wrong_header_checksum_is_reported_by_check_but_opens_as_qemu_opens_it()
    {
        MemoryHostFile file = await CreateInMemory(10 * MiB);
        await file.WriteAsync(900, new byte[] { 1 });
        await using IImage image = await Open(file);
        CheckReport report = await ((ICheckable)image).CheckAsync(CheckRepair.None);
        Assert.Equal(1, report.Corruptions);
        Assert.Equal("dynamic disk header", report.Findings[0].Structure);
    }

    [Fact]
    public async Task A_truncated_fixed_disk_is_refused()
    {
        MemoryHostFile file = await CreateInMemory(10 * MiB, "subformat=fixed,force_size=on");
        byte[] footer = new byte[512];
        await file.ReadZeroFilledAsync(10 * MiB, footer);
        file.SetLength(MiB);
        await file.WriteAsync(MiB, footer);
        var e = await Assert.ThrowsAsync<ImageCorruptException>(async () => await Open(file));
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bat_entry_past_the_end_is_reported_by_check_and_fails_reads_of_that_block_only()
    {
        MemoryHostFile file = await CreateInMemory(10 * MiB);
        await using (IImage writer = await Open(file))
        {
            await writer.WriteAsync(0, Pattern(4096, 3));
        }

        byte[] entry = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(entry, 0x00ffffff);
        await file.WriteAsync(1536 + 4, entry); // block 1 -> far past the end
        await file.WriteAsync(1536 + 8, new byte[] { 0, 0, 0, 2 }); // block 2 -> onto the header
        var readOnly = new MemoryHostFileView(file);
        await using IImage image = await VhdFormat.Instance.OpenAsync(readOnly, NoBacking);
        byte[] ok = new byte[4096];
        await image.ReadAsync(0, ok);
        Assert.Equal(Pattern(4096, 3), ok);
        await Assert.ThrowsAsync<ImageCorruptException>(async () => await image.ReadAsync(2 * MiB, new byte[512]));
        CheckReport report = await ((ICheckable)image).CheckAsync(CheckRepair.None);
        Assert.Contains(report.Findings, f => f.Message.Contains("past the end", StringComparison.Ordinal));
        Assert.Contains(report.Findings, f => f.Message.Contains("overlaps the dynamic disk header", StringComparison.Ordinal));
        await Assert.ThrowsAsync<ImageCorruptException>(async () => await Open(file));
    }

    [Fact]
    public async Task Overlapping_blocks_are_corruption()
    {
        MemoryHostFile file = await CreateInMemory(10 * MiB);
        await using (IImage writer = await Open(file))
        {
            await writer.WriteAsync(0, Pattern(4096, 3));
            await writer.WriteAsync(2 * MiB, Pattern(4096, 4));
        }

        byte[] first = new byte[4];
        await file.ReadZeroFilledAsync(1536, first);
        await file.WriteAsync(1536 + 4, first); // block 1 now shares block 0's place
        await using IImage image = await Open(file);
        CheckReport report = await ((ICheckable)image).CheckAsync(CheckRepair.None);
        Assert.Equal(1, report.Corruptions);
        Assert.Contains("overlap", report.Findings[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Differencing_disk_reads_through_to_its_parent_and_checks_the_parent_id()
    {
        string parentPath = _dir.File("base.vhd");
        string childPath = _dir.File("child.vhd");
        await ImageFactory.CreateAsync(parentPath, VhdFormat.Instance, new ImageCreateRequest(8 * MiB, ImageOptions.Empty));
        await using (IImage parent = await _opener.OpenAsync(parentPath, new ImageOpenRequest(ReadOnly: false)))
        {
            await parent.WriteAsync(0, Pattern((int)(4 * MiB), 5));
        }

        long size;
        await using (IImage parent = await _opener.OpenAsync(parentPath, new ImageOpenRequest()))
        {
            size = parent.SizeBytes;
        }

        await ImageFactory.CreateAsync(childPath, VhdFormat.Instance, new ImageCreateRequest(size, ImageOptions.Empty, "base.vhd", "vpc"));
        byte[] model = new byte[size];
        Pattern((int)(4 * MiB), 5).CopyTo(model, 0);
        await using (IImage child = await _opener.OpenAsync(childPath, new ImageOpenRequest(ReadOnly: false)))
        {
            Assert.Equal("base.vhd", ((IBackingChain)child).BackingFileName);
            byte[] patch = Pattern(1000, 6);
            await child.WriteAsync(MiB + 7, patch);
            patch.CopyTo(model, MiB + 7);
            await child.WriteZeroesAsync(3 * MiB, 8192, BlockZeroFlags.None);
            Array.Clear(model, (int)(3 * MiB), 8192);
            BlockStatus status = await BackingChainStatus.GetAsync(child, 0, size);
            Assert.Equal(1, status.Depth);
        }

        await using (IImage child = await _opener.OpenAsync(childPath, new ImageOpenRequest()))
        {
            byte[] back = new byte[size];
            await child.ReadAsync(0, back);
            Assert.Equal(model, back);
            Assert.Equal(0, await CheckCorruptions((IImage)child));
        }

        // A different disk in the parent's place is refused.
        File.Delete(parentPath);
        await ImageFactory.CreateAsync(parentPath, VhdFormat.Instance, new ImageCreateRequest(8 * MiB, ImageOptions.Empty));
        var e = await Assert.ThrowsAsync<BackingFileException>(async () => await _opener.OpenAsync(childPath, new ImageOpenRequest()));
        Assert.Contains("not the disk", e.Message, StringComparison.Ordinal);
        File.Delete(parentPath);
        await Assert.ThrowsAsync<BackingFileException>(async () => await _opener.OpenAsync(childPath, new ImageOpenRequest()));
    }

    [Fact]
    public async Task A_differencing_parent_must_be_a_vhd_of_the_same_size()
    {
        string raw = _dir.File("base.raw");
        await File.WriteAllBytesAsync(raw, new byte[MiB]);
        await Assert.ThrowsAsync<UnsupportedFeatureException>(async () =>
            await ImageFactory.CreateAsync(_dir.File("c.vhd"), VhdFormat.Instance, new ImageCreateRequest(MiB, ImageOptions.Empty, "base.raw", "raw")));
        string parent = _dir.File("p.vhd");
        await ImageFactory.CreateAsync(parent, VhdFormat.Instance, new ImageCreateRequest(8 * MiB, ImageOptions.Empty));
        await Assert.ThrowsAsync<UnsupportedFeatureException>(async () =>
            await ImageFactory.CreateAsync(_dir.File("c.vhd"), VhdFormat.Instance, new ImageCreateRequest(MiB, ImageOptions.Empty, "p.vhd")));
        Assert.False(File.Exists(_dir.File("c.vhd")));
    }

    [Fact]
    public void Probe_takes_the_head_cookie_or_a_valid_footer_at_the_end()
    {
        byte[] head = new byte[512];
        "conectix"u8.CopyTo(head);
        Assert.Equal(100, VhdFormat.Instance.Probe(new ProbeInput(head, new byte[512], 4096, "x")));
        Assert.Equal(0, VhdFormat.Instance.Probe(new ProbeInput(new byte[512], head, 4096, "x"))); // bad checksum
        var footer = new VhdFooter(2, VhdFooter.Version1, ulong.MaxValue, 0, VhdFooter.FourCc("qem2"), 0, 0, 512, 512, 65535, 16, 255, VhdDiskType.Fixed, 0, Guid.Empty, 0, []);
        byte[] tail = new byte[512];
        footer.Write(tail);
        Assert.Equal(100, VhdFormat.Instance.Probe(new ProbeInput(new byte[512], tail, 1024, "x")));
    }

    private static async Task<long> CheckCorruptions(IImage image) =>
        (await ((ICheckable)image).CheckAsync(CheckRepair.None)).Corruptions;

    /// <summary>A read-only view of a memory file, as a read-only open sees it.</summary>
    private sealed class MemoryHostFileView(MemoryHostFile inner) : IHostFile
    {
        public string Path => inner.Path;

        public bool IsReadOnly => true;

        public long Length => inner.Length;

        public long AllocatedBytes => inner.AllocatedBytes;

        public int Alignment => 1;

        public ValueTask<int> ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(offsetBytes, buffer, cancellationToken);

        public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => throw new HostIOException("read-only");

        public void SetLength(long lengthBytes) => throw new HostIOException("read-only");

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public HostExtent GetExtent(long offsetBytes, long maxLengthBytes) => inner.GetExtent(offsetBytes, maxLengthBytes);

        public void PunchHole(long offsetBytes, long lengthBytes) => throw new HostIOException("read-only");

        public void ZeroRange(long offsetBytes, long lengthBytes) => throw new HostIOException("read-only");

        public void Preallocate(long offsetBytes, long lengthBytes, bool writeZeros) => throw new HostIOException("read-only");

        public void Dispose()
        {
        }
    }
}

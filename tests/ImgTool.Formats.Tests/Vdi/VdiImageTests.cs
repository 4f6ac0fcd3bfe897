using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats.Vdi;
using static ImgTool.Formats.Tests.Vdi.VdiTestSupport;

namespace ImgTool.Formats.Tests.Vdi;

public sealed class VdiImageTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ImageOpener _opener = new(FormatRegistry.Default);

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("")]
    [InlineData("static=on")]
    public async Task Writes_read_back_after_reopen(string options)
    {
        var file = await CreateInMemory(5 * MiB + 4096, options);
        byte[] data = Pattern(300_000, 1);
        await using (IImage image = await Open(file))
        {
            await image.WriteAsync(3 * MiB - 1000, data);
            await image.WriteAsync(17, new byte[] { 1, 2, 3 });
            await image.WriteAsync(5 * MiB + 100, new byte[] { 9 });
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
        byte[] tail = new byte[1];
        await reopened.ReadAsync(5 * MiB + 100, tail);
        Assert.Equal(9, tail[0]);
        Assert.Equal(0, await Corruptions(reopened));
    }

    [Fact]
    public async Task New_blocks_go_to_the_end_of_the_file_and_the_header_counts_them()
    {
        var file = await CreateInMemory(4 * MiB);
        await using (IImage image = await Open(file))
        {
            await image.WriteAsync(3 * MiB + 5, new byte[] { 7 });
            await image.WriteAsync(MiB, new byte[MiB].Select(_ => (byte)1).ToArray());
            await image.WriteAsync(3 * MiB + 6, new byte[] { 8 }); // in place: no new block
        }

        VdiHeader header = Header(file);
        Assert.Equal(2u, header.BlocksAllocated);
        Assert.Equal(0u, Entry(file, 3));
        Assert.Equal(1u, Entry(file, 1));
        Assert.Equal(VdiBlockMap.Free, Entry(file, 0));
        Assert.Equal(header.DataOffsetBytes + (2L * MiB), file.Length);
        byte[] slot0 = new byte[7];
        await file.ReadZeroFilledAsync(header.DataOffsetBytes, slot0);
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0, 7, 8 }, slot0);
    }

    [Fact]
    public async Task Zero_writes_to_free_blocks_allocate_nothing()
    {
        var file = await CreateInMemory(4 * MiB);
        long length = file.Length;
        await using IImage image = await Open(file);
        await image.WriteAsync(0, new byte[2 * MiB]);
        await image.WriteZeroesAsync(2 * MiB, MiB, BlockZeroFlags.None);
        Assert.Equal(length, file.Length);
        Assert.Equal(0u, Header(file).BlocksAllocated);
    }

    [Fact]
    public async Task The_first_write_of_a_session_renews_the_modification_uuid()
    {
        var file = await CreateInMemory(2 * MiB);
        VdiHeader before = Header(file);
        await using (IImage image = await Open(file))
        {
            await image.WriteAsync(0, new byte[] { 1 });
            await image.WriteAsync(1, new byte[] { 2 });
        }

        VdiHeader after = Header(file);
        Assert.Equal(before.UuidCreate, after.UuidCreate);
        Assert.NotEqual(before.UuidModify, after.UuidModify);
    }

    [Fact]
    public async Task Free_and_zero_entries_read_as_zeros_and_report_zero_status()
    {
        var file = await CreateInMemory(3 * MiB);
        await using (IImage image = await Open(file))
        {
            await image.WriteAsync(0, Pattern(MiB, 4));
        }

        SetEntry(file, 1, VdiBlockMap.Zero);
        PatchU32(file, VdiHeader.BlocksAllocatedOffset, 1);
        await using IImage reopened = await Open(file);
        byte[] back = new byte[2 * MiB];
        await reopened.ReadAsync(MiB, back);
        Assert.All(back, b => Assert.Equal(0, b));
        BlockStatus data = await reopened.GetStatusAsync(0, 3 * MiB);
        Assert.Equal(new BlockStatus(BlockStatusKind.Data, MiB, Header(file).DataOffsetBytes), data);
        Assert.Equal(new BlockStatus(BlockStatusKind.Zero, MiB, Allocated: false), await reopened.GetStatusAsync(MiB, 2 * MiB));
        Assert.Equal(0, await Corruptions(reopened));
    }

    [Fact]
    public async Task Adjacent_slots_make_one_status_extent_and_static_images_see_host_holes()
    {
        var file = await CreateInMemory(3 * MiB, "static=on");
        await using IImage image = await Open(file);
        await image.WriteAsync(0, Pattern(4096, 5));
        BlockStatus first = await image.GetStatusAsync(0, 3 * MiB);
        Assert.Equal(BlockStatusKind.Data, first.Kind);
        Assert.False(first.DataIsHostHole);
        BlockStatus rest = await image.GetStatusAsync(first.LengthBytes, (3 * MiB) - first.LengthBytes);
        Assert.True(rest.DataIsHostHole); // qemu: "zero": true, "data": true for the unwritten part of a static image
        Assert.Equal((3 * MiB) - first.LengthBytes, rest.LengthBytes);
    }

    [Fact]
    public async Task A_differencing_chain_made_with_b_reads_through_and_writes_to_the_child()
    {
        string parentPath = _dir.File("base.vdi");
        string childPath = _dir.File("{child}.vdi");
        const int size = (3 * MiB) + 512;
        await ImageFactory.CreateAsync(parentPath, VdiFormat.Instance, new ImageCreateRequest(size, ImageOptions.Empty));
        byte[] model = Pattern(size, 7);
        Array.Clear(model, 2 * MiB, MiB + 512); // the last two blocks stay free in the parent
        await using (IImage parent = await _opener.OpenAsync(parentPath, new ImageOpenRequest(ReadOnly: false)))
        {
            await parent.WriteAsync(0, model.AsMemory(0, 2 * MiB));
        }

        await ImageFactory.CreateAsync(childPath, VdiFormat.Instance, new ImageCreateRequest(size, ImageOptions.Empty, "base.vdi", "vdi"));
        VdiHeader parentHeader = Header(LinuxHostFile.Open(parentPath, new HostOpenOptions(ReadOnly: true, Lock: HostLockMode.None)));
        using (var childFile = LinuxHostFile.Open(childPath, new HostOpenOptions(ReadOnly: true, Lock: HostLockMode.None)))
        {
            VdiHeader child = Header(childFile);
            Assert.Equal(VdiImageType.Differencing, child.ImageType);
            Assert.Equal(parentHeader.UuidCreate, child.UuidLinkage);
            Assert.Equal(parentHeader.UuidModify, child.UuidParentModify);
        }

        byte[] patch = Pattern(5000, 8);
        await using (IImage image = await _opener.OpenAsync(childPath, new ImageOpenRequest(ReadOnly: false)))
        {
            Assert.Equal("base.vdi", ((IBackingChain)image).BackingFileName);
            Assert.Equal(BlockStatusKind.Unallocated, (await image.GetStatusAsync(0, size)).Kind);
            await image.WriteAsync(MiB - 100, patch);                            // partial: the rest of both blocks is copied from the parent
            await image.WriteZeroesAsync(0, 4096, BlockZeroFlags.MayUnmap);       // partial zeros also allocate
            await image.WriteZeroesAsync(2 * MiB, MiB + 512, BlockZeroFlags.None); // the whole last block: a zero marker
            await image.WriteAsync(3 * MiB + 10, new byte[] { 5 });               // a write into the zero block allocates it
        }

        patch.CopyTo(model, MiB - 100);
        Array.Clear(model, 0, 4096);
        model[(3 * MiB) + 10] = 5;
        await using IImage reopened = await _opener.OpenAsync(childPath, new ImageOpenRequest());
        byte[] back = new byte[size];
        await reopened.ReadAsync(0, back);
        Assert.Equal(model, back);
        Assert.Equal(0, await Corruptions(reopened));

        // The parent was not written.
        await using IImage parentAgain = await _opener.OpenAsync(parentPath, new ImageOpenRequest());
        byte[] parentData = new byte[4096];
        await parentAgain.ReadAsync(0, parentData);
        Assert.Contains(parentData, b => b != 0);
    }

    [Fact]
    public async Task A_hand_built_differencing_header_finds_its_parent_by_uuid_alone()
    {
        // As VirtualBox lays out a snapshot: data aligned to 1 MiB, a v1.1+ header, the parent named nowhere in the file.
        string parentPath = _dir.File("Base Disk.vdi");
        await ImageFactory.CreateAsync(parentPath, VdiFormat.Instance, new ImageCreateRequest(2 * MiB, ImageOptions.Empty));
        byte[] parentData = Pattern(2 * MiB, 11);
        await using (IImage parent = await _opener.OpenAsync(parentPath, new ImageOpenRequest(ReadOnly: false)))
        {
            await parent.WriteAsync(0, parentData);
        }

        VdiHeader parentHeader;
        using (var parentFile = LinuxHostFile.Open(parentPath, new HostOpenOptions(ReadOnly: true, Lock: HostLockMode.None)))
        {
            parentHeader = Header(parentFile);
        }

        _ = await ImageFactory.CreateAsync(_dir.File("decoy.vdi"), VdiFormat.Instance, new ImageCreateRequest(2 * MiB, ImageOptions.Empty));
        byte[] childBytes = new byte[(2 * MiB) + MiB];
        var header = VdiHeader.CreateNew(VdiImageType.Differencing, 2 * MiB, 2, 1, Guid.NewGuid(), Guid.NewGuid(), parentHeader.UuidCreate, parentHeader.UuidModify) with
        {
            HeaderBytes = VdiHeader.Header1PlusBytes,
            BlockMapOffsetBytes = MiB,
            DataOffsetBytes = 2 * MiB,
        };
        header.Write(childBytes);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(childBytes.AsSpan(MiB), VdiBlockMap.Free);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(childBytes.AsSpan(MiB + 4), 0);
        byte[] childBlock = Pattern(MiB, 12);
        childBlock.CopyTo(childBytes, 2 * MiB);
        string childPath = _dir.File("{3b8f4c1e-0000-4000-8000-000000000001}.vdi");
        await File.WriteAllBytesAsync(childPath, childBytes);

        await using IImage image = await _opener.OpenAsync(childPath, new ImageOpenRequest());
        Assert.Equal("Base Disk.vdi", ((IBackingChain)image).BackingFileName);
        byte[] back = new byte[2 * MiB];
        await image.ReadAsync(0, back);
        Assert.Equal(parentData.AsSpan(0, MiB).ToArray(), back.AsSpan(0, MiB).ToArray());
        Assert.Equal(childBlock, back.AsSpan(MiB).ToArray());
    }

    [Fact]
    public async Task A_parent_can_be_named_explicitly_and_must_carry_the_linked_uuid()
    {
        Directory.CreateDirectory(_dir.File("elsewhere"));
        string parentPath = _dir.File("elsewhere/base.vdi");
        await ImageFactory.CreateAsync(parentPath, VdiFormat.Instance, new ImageCreateRequest(MiB, ImageOptions.Empty));
        await using (IImage parent = await _opener.OpenAsync(parentPath, new ImageOpenRequest(ReadOnly: false)))
        {
            await parent.WriteAsync(0, new byte[] { 42 });
        }

        string childPath = _dir.File("child.vdi");
        await ImageFactory.CreateAsync(childPath, VdiFormat.Instance, new ImageCreateRequest(MiB, ImageOptions.Empty, "elsewhere/base.vdi", "vdi"));

        // Not in the child's folder: the search fails with a clear error, naming it works.
        var missing = await Assert.ThrowsAsync<BackingFileException>(async () => await _opener.OpenAsync(childPath, new ImageOpenRequest()));
        Assert.Contains("not among the .vdi files", missing.Message, StringComparison.Ordinal);
        await using (IImage named = await _opener.OpenAsync(childPath, new ImageOpenRequest(BackingFile: "elsewhere/base.vdi")))
        {
            byte[] one = new byte[1];
            await named.ReadAsync(0, one);
            Assert.Equal(42, one[0]);
        }

        var imageOpts = new ImageOpener(FormatRegistry.Default) { ImageOpts = true };
        await using (IImage viaOpts = await imageOpts.OpenAsync($"driver=vdi,file.filename={childPath},backing.file.filename=elsewhere/base.vdi", new ImageOpenRequest()))
        {
            Assert.Equal("elsewhere/base.vdi", ((IBackingChain)viaOpts).BackingFileName);
        }

        string stranger = _dir.File("stranger.vdi");
        await ImageFactory.CreateAsync(stranger, VdiFormat.Instance, new ImageCreateRequest(MiB, ImageOptions.Empty));
        var wrong = await Assert.ThrowsAsync<BackingFileException>(async () => await _opener.OpenAsync(childPath, new ImageOpenRequest(BackingFile: "stranger.vdi")));
        Assert.Contains("not the image this one was made from", wrong.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_refuses_static_differencing_images_and_other_parent_formats()
    {
        string parentPath = _dir.File("base.vdi");
        await ImageFactory.CreateAsync(parentPath, VdiFormat.Instance, new ImageCreateRequest(MiB, ImageOptions.Empty));
        await Assert.ThrowsAsync<InvalidOptionException>(async () =>
            await ImageFactory.CreateAsync(_dir.File("c.vdi"), VdiFormat.Instance, new ImageCreateRequest(MiB, ImageOptions.Parse(["static=on"]), "base.vdi", "vdi")));
        await Assert.ThrowsAsync<UnsupportedFeatureException>(async () =>
            await ImageFactory.CreateAsync(_dir.File("c.vdi"), VdiFormat.Instance, new ImageCreateRequest(MiB, ImageOptions.Empty, "base.vdi", "qcow2")));
        await Assert.ThrowsAsync<UnsupportedFeatureException>(async () =>
            await ImageFactory.CreateAsync(_dir.File("c.vdi"), VdiFormat.Instance, new ImageCreateRequest(2 * MiB, ImageOptions.Empty, "base.vdi", "vdi")));
        Assert.False(File.Exists(_dir.File("c.vdi")));
    }

    [Fact]
    public void Probe_takes_the_signature_at_offset_64()
    {
        byte[] head = VdiHeader.CreateNew(VdiImageType.Dynamic, MiB, 1, 0, Guid.NewGuid(), Guid.NewGuid(), Guid.Empty, Guid.Empty).ToBytes();
        Assert.Equal(100, VdiFormat.Instance.Probe(new ProbeInput(head, [], head.Length, "x")));
        head[VdiHeader.SignatureOffset] ^= 1;
        Assert.Equal(0, VdiFormat.Instance.Probe(new ProbeInput(head, [], head.Length, "x")));
        Assert.Equal("vdi", FormatRegistry.Default.Get("vdi").Name);
    }
}

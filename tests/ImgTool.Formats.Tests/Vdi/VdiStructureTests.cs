using ImgTool.Formats.Vdi;
using static ImgTool.Formats.Tests.Vdi.VdiTestSupport;

namespace ImgTool.Formats.Tests.Vdi;

public sealed class VdiStructureTests
{
    [Fact]
    public void Header_offsets_follow_the_v1_1_layout()
    {
        // VDIPREHEADER is 72 bytes; VDIHEADER1 is 0x180 bytes after it (QEMU's VdiHeader fills the 512-byte sector).
        Assert.Equal(0x40, VdiHeader.SignatureOffset);
        Assert.Equal(0x48, VdiHeader.PreHeaderBytes);
        Assert.Equal(0x154, VdiHeader.BlockMapOffsetOffset);
        Assert.Equal(0x168, VdiHeader.SectorBytesOffset);
        Assert.Equal(0x170, VdiHeader.DiskSizeOffset);
        Assert.Equal(0x180, VdiHeader.BlockCountOffset);
        Assert.Equal(0x184, VdiHeader.BlocksAllocatedOffset);
        Assert.Equal(0x188, VdiHeader.UuidCreateOffset);
        Assert.Equal(0x1a8, VdiHeader.UuidLinkageOffset);
        Assert.Equal(VdiHeader.PreHeaderBytes + (int)VdiHeader.Header1Bytes, VdiHeader.Header1End);
        Assert.Equal(512, VdiHeader.SizeBytes);
    }

    [Fact]
    public void Header_round_trips_and_keeps_bytes_it_does_not_know()
    {
        VdiHeader header = VdiHeader.CreateNew(VdiImageType.Differencing, 5 * MiB, 5, 2, Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        byte[] bytes = header.ToBytes();
        bytes[VdiHeader.CommentOffset] = (byte)'x'; // a comment and LCHS geometry written by VirtualBox
        bytes[VdiHeader.Header1End + 3] = 0x42;
        VdiHeader back = VdiHeader.Read(bytes);
        Assert.Equal(header.UuidLinkage, back.UuidLinkage);
        Assert.Equal(header with { Sector = back.Sector }, back);
        Assert.Equal(bytes, (back with { BlocksAllocated = 2 }).ToBytes());
    }

    [Fact]
    public void Uuids_are_stored_in_iprt_byte_order()
    {
        // IPRT (and QEMU after its uuid_convert) print the first three fields little-endian: the layout of System.Guid.
        var uuid = Guid.Parse("01020304-0506-0708-090a-0b0c0d0e0f10");
        VdiHeader header = VdiHeader.CreateNew(VdiImageType.Dynamic, MiB, 1, 0, uuid, Guid.NewGuid(), Guid.Empty, Guid.Empty);
        byte[] bytes = header.ToBytes();
        Assert.Equal(new byte[] { 4, 3, 2, 1, 6, 5, 8, 7, 9, 10 }, bytes.AsSpan(VdiHeader.UuidCreateOffset, 10).ToArray());
    }

    [Fact]
    public async Task A_new_dynamic_image_has_qemus_layout()
    {
        var file = await CreateInMemory(5 * MiB);
        Assert.Equal(1024, file.Length); // header sector, one sector of block map, no data
        VdiHeader header = Header(file);
        Assert.Equal(VdiHeader.Header1Bytes, header.HeaderBytes);
        Assert.Equal(512u, header.BlockMapOffsetBytes);
        Assert.Equal(1024u, header.DataOffsetBytes);
        Assert.Equal(5u, header.BlockCount);
        Assert.Equal(0u, header.BlocksAllocated);
        Assert.NotEqual(Guid.Empty, header.UuidCreate);
        Assert.NotEqual(Guid.Empty, header.UuidModify);
        Assert.Equal(Guid.Empty, header.UuidLinkage);
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(VdiBlockMap.Free, Entry(file, i));
        }
    }

    [Fact]
    public async Task A_new_static_image_has_every_block_in_order_and_its_full_length()
    {
        var file = await CreateInMemory(3 * MiB, "static=on");
        VdiHeader header = Header(file);
        Assert.Equal(VdiImageType.Static, header.ImageType);
        Assert.Equal(3u, header.BlocksAllocated);
        Assert.Equal(1024 + (3 * MiB), file.Length);
        Assert.Equal(new uint[] { 0, 1, 2 }, Enumerable.Range(0, 3).Select(i => Entry(file, i)).ToArray());
        Assert.Equal(0, file.AllocatedBytes - 4096); // sparse: only the metadata page is stored
    }

    [Fact]
    public async Task Sizes_are_rounded_up_to_sectors_and_blocks_as_qemu_does()
    {
        var file = await CreateInMemory(1_000_000);
        VdiHeader header = Header(file);
        Assert.Equal(1_000_448ul, header.DiskSizeBytes);
        Assert.Equal(1u, header.BlockCount);
        await using var image = await Open(file);
        Assert.Equal(1_000_448, image.SizeBytes);
    }
}

using System.Buffers.Binary;
using ImgTool.Formats.Bochs;
using ImgTool.Formats.Cloop;
using ImgTool.Formats.Dmg;
using ImgTool.Formats.Parallels;

namespace ImgTool.Formats.Tests.ReadOnly;

/// <summary>The on-disk structures of the read-only formats, pinned to their specs' sizes and field offsets.</summary>
public sealed class ReadOnlyStructureTests
{
    [Fact]
    public void The_parallels_header_is_64_bytes_with_the_spec_offsets()
    {
        Assert.Equal(64, ParallelsHeader.SizeBytes);
        var header = new ParallelsHeader(true, 2, 16, 32, 2048, 10, 20480, ParallelsHeader.InUseOpen, 2048, 1, 4096);
        byte[] bytes = new byte[64];
        header.Write(bytes);
        Assert.Equal("WithouFreSpacExt"u8.ToArray(), bytes[..16]);
        Assert.Equal(2048u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(28)));
        Assert.Equal(20480ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(36)));
        Assert.Equal(0x746F6E59u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(44)));
        Assert.Equal(4096ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(56)));
        Assert.Equal(header, ParallelsHeader.Read(bytes, null));
        Assert.Equal(1024L * 1024, header.ClusterBytes);
        Assert.Equal(header.ClusterBytes, header.BatUnitBytes);
        Assert.Equal(24, ParallelsExtension.HeaderBytes);
        Assert.Equal(24, ParallelsExtension.FeatureHeaderBytes);
        Assert.Equal(32, ParallelsExtension.BitmapHeaderBytes);
    }

    [Fact]
    public void The_bochs_header_is_512_bytes_and_v1_keeps_the_disk_size_where_v2_keeps_a_reserved_word()
    {
        byte[] v2 = new byte[BochsHeader.SizeBytes];
        new BochsHeader(BochsHeader.Version2, 512, 16, 512, 4096, 1 << 20).Write(v2);
        Assert.Equal(1ul << 20, BinaryPrimitives.ReadUInt64LittleEndian(v2.AsSpan(88)));
        byte[] v1 = new byte[BochsHeader.SizeBytes];
        new BochsHeader(BochsHeader.Version1, 512, 16, 512, 4096, 1 << 20).Write(v1);
        Assert.Equal(1ul << 20, BinaryPrimitives.ReadUInt64LittleEndian(v1.AsSpan(84)));
        Assert.True(BochsHeader.Matches(v1) && BochsHeader.Matches(v2));
        Assert.Equal("Redolog"u8.ToArray(), v2[32..39]);
        Assert.Equal("Growing"u8.ToArray(), v2[48..55]);
    }

    [Fact]
    public void The_cloop_header_follows_its_128_byte_script()
    {
        Assert.Equal(128, CloopHeader.BlockSizeField);
        Assert.Equal(136, CloopHeader.OffsetsField);
        Assert.True(CloopHeader.Matches("#!/bin/sh\n#V2.0"u8));
        Assert.False(CloopHeader.Matches("# Disk DescriptorFile"u8));
    }

    [Fact]
    public void The_UDIF_trailer_is_512_bytes_with_the_spec_offsets()
    {
        byte[] bytes = new byte[DmgTrailer.SizeBytes];
        new DmgTrailer(4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66).Write(bytes);
        Assert.Equal("koly"u8.ToArray(), bytes[..4]);
        Assert.Equal(0x11ul, BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(0x18)));
        Assert.Equal(0x22ul, BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(0x28)));
        Assert.Equal(0x33ul, BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(0x30)));
        Assert.Equal(0x44ul, BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(0xd8)));
        Assert.Equal(0x55ul, BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(0xe0)));
        Assert.Equal(0x66ul, BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(0x1ec)));
        Assert.Equal(new DmgTrailer(4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66), DmgTrailer.Read(bytes));
        Assert.Equal(204, DmgBlockTable.HeaderBytes);
        Assert.Equal(40, DmgBlockTable.ChunkBytes);
    }
}

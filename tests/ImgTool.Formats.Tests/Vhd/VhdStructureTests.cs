using ImgTool.Block.Errors;
using ImgTool.Formats.Vhd;

namespace ImgTool.Formats.Tests.Vhd;

public sealed class VhdStructureTests
{
    [Fact]
    public void Structure_sizes_and_offsets_follow_the_spec()
    {
        Assert.Equal(512, VhdFooter.SizeBytes);
        Assert.Equal(64, VhdFooter.ChecksumOffset);
        Assert.Equal(68, VhdFooter.UniqueIdOffset);
        Assert.Equal(85, VhdFooter.ReservedOffset);
        Assert.Equal(1024, VhdDynamicHeader.SizeBytes);
        Assert.Equal(64, VhdDynamicHeader.ParentUnicodeNameOffset);
        Assert.Equal(576, VhdDynamicHeader.ParentLocatorsOffset);
        Assert.Equal(768, VhdDynamicHeader.Reserved2Offset);
    }

    [Fact]
    public void Footer_round_trips_with_a_valid_checksum()
    {
        var footer = new VhdFooter(2, VhdFooter.Version1, 512, 12345, VhdFooter.FourCc("win "), 0x000a0000, VhdFooter.FourCc("Wi2k"),
            1 << 30, 1 << 30, 2080, 16, 63, VhdDiskType.Dynamic, 0, Guid.NewGuid(), 0, new byte[VhdFooter.SizeBytes - VhdFooter.ReservedOffset]);
        byte[] bytes = new byte[512];
        footer.Write(bytes);
        Assert.True(VhdFooter.ChecksumMatches(bytes));
        VhdFooter back = VhdFooter.Read(bytes, null);
        Assert.Equal(footer with { Checksum = back.Checksum, Reserved = back.Reserved }, back);
        Assert.Equal("win ", back.CreatorApplicationText);
        bytes[100] ^= 1;
        Assert.False(VhdFooter.ChecksumMatches(bytes));
    }

    [Fact]
    public void Dynamic_header_round_trips_parent_name_and_locators()
    {
        var locators = new VhdParentLocator[8];
        locators[0] = new VhdParentLocator(VhdParentLocator.W2ru, 512, 20, 0, 1536);
        var header = new VhdDynamicHeader(ulong.MaxValue, 2048, VhdFooter.Version1, 51, 2 << 20, 0, Guid.NewGuid(), 777, "base.vhd", locators);
        byte[] bytes = new byte[1024];
        header.Write(bytes);
        Assert.True(VhdDynamicHeader.ChecksumMatches(bytes));
        VhdDynamicHeader back = VhdDynamicHeader.Read(bytes, null);
        Assert.Equal("base.vhd", back.ParentUnicodeName);
        Assert.Equal(locators, back.ParentLocators);
        Assert.Equal(header.ParentUniqueId, back.ParentUniqueId);
        Assert.Equal(2048UL, back.TableOffset);
    }

    [Theory]
    [InlineData(100L << 20, false, 104865792L, 1004, 12, 17)] // what qemu-img 7.2 writes for 100M
    [InlineData(100L << 20, true, 104857600L, 65535, 16, 255)]
    [InlineData(1L << 30, false, 1073995776L, 2081, 16, 63)]
    [InlineData(1000, false, 0L, 0, 0, 0)]
    public void Create_size_and_geometry_match_qemu(long requested, bool force, long expected, int cylinders, int heads, int sectors)
    {
        var (size, c, h, s) = VhdGeometry.ForCreate(requested, force, null);
        if (cylinders == 0)
        {
            // Tiny disks: the geometry covers at least the requested sectors.
            Assert.True(size >= requested && (long)c * h * s * 512 == size);
            return;
        }

        Assert.Equal(expected, size);
        Assert.Equal((cylinders, heads, sectors), ((int)c, (int)h, (int)s));
    }

    [Fact]
    public void Disks_over_2040_GiB_are_refused() =>
        Assert.Throws<InvalidOptionException>(() => VhdGeometry.ForCreate(2041L << 30, true, null));

    [Theory]
    [InlineData("vpc ", true)]
    [InlineData("qemu", true)]
    [InlineData("qem2", false)]
    [InlineData("win ", false)]
    [InlineData("wa\0\0", false)]
    [InlineData("d2v ", false)]
    public void Legacy_creators_are_sized_by_chs_others_by_current_size(string creator, bool byChs)
    {
        var footer = new VhdFooter(2, VhdFooter.Version1, ulong.MaxValue, 0, VhdFooter.FourCc(creator), 0, 0,
            30L << 20, 30L << 20, 1000, 4, 17, VhdDiskType.Fixed, 0, Guid.Empty, 0, []);
        Assert.Equal(byChs ? 1000L * 4 * 17 * 512 : 30L << 20, VhdGeometry.VirtualSize(footer));
    }

    [Fact]
    public void Bitmap_bits_are_most_significant_first()
    {
        byte[] bitmap = new byte[512];
        VhdBitmaps.SetRange(bitmap, 1, 3);
        Assert.Equal(0b0111_0000, bitmap[0]);
        Assert.Equal(3, VhdBitmaps.RunLength(bitmap, 1, 100, out bool set));
        Assert.True(set);
        Assert.Equal(1, VhdBitmaps.RunLength(bitmap, 0, 100, out set));
        Assert.False(set);
        Assert.Equal(512, VhdImage.BitmapBytesFor(2 << 20));
        Assert.Equal(512, VhdImage.BitmapBytesFor(512));
        Assert.Equal(1024, VhdImage.BitmapBytesFor(4 << 20));
    }

    [Theory]
    [InlineData(".\\base.vhd", "base.vhd")]
    [InlineData("..\\dir\\base.vhd", "../dir/base.vhd")]
    [InlineData("\\tmp\\x\\base.vhd", "/tmp/x/base.vhd")]
    public void Locator_paths_become_host_paths(string windows, string host) =>
        Assert.Equal(host, VhdImage.WindowsToHostPath(windows));
}

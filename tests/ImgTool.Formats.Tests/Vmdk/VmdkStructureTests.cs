using ImgTool.Block.Errors;
using ImgTool.Formats.Vmdk;

namespace ImgTool.Formats.Tests.Vmdk;

public sealed class VmdkStructureTests
{
    [Fact]
    public void Header_fields_sit_where_the_spec_puts_them()
    {
        // VMware "Virtual Disk Format 1.1": the packed SparseExtentHeader is 79 bytes before its padding, in one sector.
        Assert.Equal(512, VmdkSparseHeader.SizeBytes);
        Assert.Equal(12, VmdkSparseHeader.CapacityOffset);
        Assert.Equal(44, VmdkSparseHeader.NumGtesPerGtOffset);
        Assert.Equal(56, VmdkSparseHeader.GdOffsetOffset);
        Assert.Equal(73, VmdkSparseHeader.SingleEndLineCharOffset);
        Assert.Equal(77, VmdkSparseHeader.CompressAlgorithmOffset);
        Assert.Equal(79, VmdkSparseHeader.PadOffset);
        Assert.Equal(12, VmdkMarker.GrainHeaderBytes);
    }

    [Fact]
    public void Header_round_trips_with_magic_and_newline_check_bytes()
    {
        var header = new VmdkSparseHeader(3, 0x30001, 2048, 128, 1, 20, 512, 0, VmdkSparseHeader.GdAtEnd, 128, false, 1);
        byte[] sector = new byte[512];
        header.Write(sector);
        Assert.Equal("KDMV"u8.ToArray(), sector[..4]);
        Assert.Equal("\n \r\n"u8.ToArray(), sector[73..77]);
        Assert.Equal(header, VmdkSparseHeader.Read(sector, null));
        Assert.True(header.IsCompressed && header.HasMarkers && !header.HasRedundantGrainTable);
    }

    [Fact]
    public void Descriptor_parses_qemu_and_vmware_text_and_keeps_ddb_order()
    {
        const string text = "# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\nCID=fffffffe\r\nparentCID=ffffffff\r\n"
            + "isNativeSnapshot=\"no\"\r\ncreateType=\"twoGbMaxExtentSparse\"\r\n\r\n# Extent description\r\n"
            + "RW 4192256 SPARSE \"disk name-s001.vmdk\"\r\nRW 8192 FLAT \"disk-f002.vmdk\" 2048\r\nNOACCESS 100 ZERO \"x\"\r\n\r\n"
            + "# The Disk Data Base\r\n#DDB\r\n\r\nddb.adapterType = \"lsilogic\"\r\nddb.uuid = \"60 00 C2 9a\"\r\nddb.virtualHWVersion = \"13\"\r\n";
        VmdkDescriptor descriptor = VmdkDescriptor.Parse(text, "d.vmdk");
        Assert.Equal(0xfffffffeu, descriptor.Cid);
        Assert.Equal(VmdkDescriptor.NoParentCid, descriptor.ParentCid);
        Assert.Equal("twoGbMaxExtentSparse", descriptor.CreateType);
        Assert.Equal(3, descriptor.Extents.Count);
        Assert.Equal(new VmdkExtentLine("RW", 4192256, "SPARSE", "disk name-s001.vmdk", 0), descriptor.Extents[0]);
        Assert.Equal(2048, descriptor.Extents[1].FlatOffsetSectors);
        Assert.Equal(["adapterType", "uuid", "virtualHWVersion"], descriptor.Ddb.Select(kv => kv.Key));
        Assert.Equal("lsilogic", descriptor.GetDdb("adapterType"));

        VmdkDescriptor again = VmdkDescriptor.Parse(descriptor.Serialize(), null);
        Assert.Equal(descriptor.Extents, again.Extents);
        Assert.Equal(descriptor.Ddb, again.Ddb);
    }

    [Theory]
    [InlineData("RW 100 FLAT \"a.vmdk\"")]
    [InlineData("RW x SPARSE \"a.vmdk\"")]
    [InlineData("RW 100 SPARSE a.vmdk")]
    [InlineData("RW 0 SPARSE \"a.vmdk\"")]
    [InlineData("RW 100 SPARSE \"a.vmdk\" 7")]
    [InlineData("RW 99999999999999999 SPARSE \"a.vmdk\"")]
    public void Bad_extent_lines_are_refused(string line)
    {
        string text = $"version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n{line}\n";
        Assert.Throws<ImageFormatException>(() => VmdkDescriptor.Parse(text, "d.vmdk"));
    }

    [Fact]
    public void Descriptors_with_too_many_extents_or_huge_lines_are_refused()
    {
        var many = new System.Text.StringBuilder("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n");
        for (int i = 0; i <= VmdkLimits.MaxExtents; i++)
        {
            many.Append("RW 8 FLAT \"x.vmdk\" 0\n");
        }

        Assert.Contains("more than", Assert.Throws<ImageFormatException>(() => VmdkDescriptor.Parse(many.ToString(), "d.vmdk")).Message, StringComparison.Ordinal);
        string longLine = "version=1\nCID=1\nparentCID=ffffffff\nddb.uuid = \"" + new string('a', VmdkLimits.MaxDescriptorLineChars) + "\"\n";
        Assert.Contains("longer than", Assert.Throws<ImageFormatException>(() => VmdkDescriptor.Parse(longLine, "d.vmdk")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_descriptor_without_cid_is_refused()
    {
        var e = Assert.Throws<ImageFormatException>(() => VmdkDescriptor.Parse("version=1\ncreateType=\"vmfs\"\n", "d.vmdk"));
        Assert.Contains("CID", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("disk-flat.vmdk", true)]
    [InlineData("sub/disk-flat.vmdk", true)]
    [InlineData("../disk-flat.vmdk", false)]
    [InlineData("sub/../../disk-flat.vmdk", false)]
    [InlineData("/etc/passwd", false)]
    [InlineData("/images/vm/disk-flat.vmdk", true)]
    [InlineData("/images/vm2/disk-flat.vmdk", false)]
    public void Extent_names_are_confined_to_the_descriptor_folder(string name, bool allowed) =>
        Assert.Equal(allowed, RelatedFileNames.IsConfined("/images/vm/disk.vmdk", name));

    [Fact]
    public void Probe_knows_sparse_magic_and_descriptors_but_not_other_text()
    {
        Assert.Equal(100, Probe("KDMV"u8.ToArray()));
        Assert.Equal(100, Probe("# Disk DescriptorFile\nversion=1\nCID=1\n"u8.ToArray()));
        Assert.Equal(100, Probe("# comment\r\n   \r\nversion=3\r\n"u8.ToArray()));
        Assert.Equal(0, Probe("hello\nversion=1\n"u8.ToArray()));
        Assert.Equal(0, Probe(new byte[512]));
    }

    [Fact]
    public void Deflate_round_trips_and_bounds_its_output()
    {
        byte[] grain = VmdkTestImages.Random(65536, 7);
        byte[] packed = new byte[VmdkDeflate.MaxCompressedBytes(grain.Length)];
        int length = VmdkDeflate.Compress(grain, packed);
        Assert.InRange(length, 1, packed.Length);
        Assert.Equal(0x78, packed[0]); // a zlib (RFC 1950) stream, as VMware and QEMU write
        byte[] back = new byte[grain.Length];
        Assert.Equal(grain.Length, VmdkDeflate.Decompress(packed, 0, length, back));
        Assert.Equal(grain, back);
        Assert.Equal(-1, VmdkDeflate.Decompress(new byte[] { 1, 2, 3, 4 }, 0, 4, back));
    }

    private static int Probe(byte[] head) => VmdkFormat.Instance.Probe(new ProbeInput(head, [], head.Length, "x"));
}

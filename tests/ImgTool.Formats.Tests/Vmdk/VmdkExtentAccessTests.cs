using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Info;
using ImgTool.Formats.Vmdk;
using static ImgTool.Formats.Tests.Vmdk.VmdkTestImages;

namespace ImgTool.Formats.Tests.Vmdk;

/// <summary>
/// Hand-written descriptors with ZERO extents and RDONLY / NOACCESS access modes, checked against the bytes they must
/// give (not against qemu-img: QEMU 7.2 drops ZERO and NOACCESS extents and moves every later extent's data down).
/// </summary>
public sealed class VmdkExtentAccessTests : IDisposable
{
    private const int Sector = 512;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private (byte[] A, byte[] B, byte[] C) WriteExtentFiles()
    {
        var random = new Random(21);
        byte[] a = new byte[64 * Sector];
        byte[] b = new byte[32 * Sector];
        byte[] c = new byte[64 * Sector];
        random.NextBytes(a);
        random.NextBytes(b);
        random.NextBytes(c);
        File.WriteAllBytes(_dir.File("a-flat.vmdk"), a);
        File.WriteAllBytes(_dir.File("b-flat.vmdk"), b);
        File.WriteAllBytes(_dir.File("c-flat.vmdk"), c);
        return (a, b, c);
    }

    private string Descriptor(string extents)
    {
        string path = _dir.File("disk.vmdk");
        File.WriteAllText(path, "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n# Extent description\n"
            + extents + "\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"ide\"\n");
        return path;
    }

    [Fact]
    public async Task A_ZERO_extent_reads_as_zeros_and_later_extents_keep_their_place()
    {
        (byte[] a, _, byte[] c) = WriteExtentFiles();
        string path = Descriptor("RW 64 FLAT \"a-flat.vmdk\" 0\nRW 100 ZERO\nRW 64 FLAT \"c-flat.vmdk\" 0\n");
        await using IImage image = await OpenAsync(path);
        Assert.Equal((64 + 100 + 64) * Sector, image.SizeBytes);
        byte[] expected = [.. a, .. new byte[100 * Sector], .. c];
        Assert.Equal(expected, await ReadAllAsync(image));

        BlockStatus zero = await image.GetStatusAsync(64 * Sector, image.SizeBytes);
        Assert.Equal((BlockStatusKind.Zero, 100L * Sector), (zero.Kind, zero.LengthBytes));
        InfoObject data = image.Details.FormatSpecific!;
        var extents = (InfoArray)data["extents"]!;
        var zeroExtent = (InfoObject)extents.Items[1];
        Assert.Equal(new InfoString("ZERO"), zeroExtent["format"]);
        Assert.Null(zeroExtent["filename"]);
    }

    [Fact]
    public async Task A_ZERO_extent_takes_writes_of_zeros_and_refuses_data()
    {
        (byte[] a, _, byte[] c) = WriteExtentFiles();
        string path = Descriptor("RW 64 FLAT \"a-flat.vmdk\" 0\nRW 100 ZERO\nRW 64 FLAT \"c-flat.vmdk\" 0\n");
        await using IImage image = await OpenAsync(path, readOnly: false);
        await image.WriteZeroesAsync(60 * Sector, 10 * Sector, BlockZeroFlags.None);
        await image.WriteAsync(70 * Sector, new byte[Sector]);
        var e = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await image.WriteAsync(70 * Sector, new byte[] { 1 }));
        Assert.Contains("ZERO extent", e.Message, StringComparison.Ordinal);

        // A write over the end of a, all of the ZERO extent and the start of c is refused as a whole: nothing is written.
        byte[] spanning = new byte[(8 + 100 + 8) * Sector];
        spanning.AsSpan().Fill(0x77);
        await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await image.WriteAsync(56 * Sector, spanning));
        a.AsSpan(60 * Sector, 4 * Sector).Clear();
        Assert.Equal(a.Concat(new byte[100 * Sector]).Concat(c).ToArray(), await ReadAllAsync(image));
    }

    [Fact]
    public async Task RDONLY_extents_read_and_refuse_writes_while_RW_extents_take_them()
    {
        (byte[] a, byte[] b, _) = WriteExtentFiles();
        string path = Descriptor("RW 64 FLAT \"a-flat.vmdk\" 0\nRDONLY 32 FLAT \"b-flat.vmdk\" 0\n");
        await using (IImage image = await OpenAsync(path, readOnly: false))
        {
            Assert.Equal(a.Concat(b).ToArray(), await ReadAllAsync(image));
            var e = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await image.WriteAsync(64 * Sector, new byte[Sector]));
            Assert.Contains("is RDONLY", e.Message, StringComparison.Ordinal);
            Assert.Contains("b-flat.vmdk", e.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await image.WriteZeroesAsync(60 * Sector, 8 * Sector, BlockZeroFlags.None));
            await image.WriteAsync(0, new byte[] { 0xee });
        }

        a[0] = 0xee;
        Assert.Equal(a, await File.ReadAllBytesAsync(_dir.File("a-flat.vmdk")));
        Assert.Equal(b, await File.ReadAllBytesAsync(_dir.File("b-flat.vmdk")));
    }

    [Fact]
    public async Task NOACCESS_extents_keep_their_place_and_refuse_reads_and_writes()
    {
        (byte[] a, _, byte[] c) = WriteExtentFiles();
        string path = Descriptor("RW 64 FLAT \"a-flat.vmdk\" 0\nNOACCESS 32 FLAT \"missing-flat.vmdk\" 0\nRW 64 FLAT \"c-flat.vmdk\" 0\n");
        await using IImage image = await OpenAsync(path, readOnly: false);
        Assert.Equal((64 + 32 + 64) * Sector, image.SizeBytes);
        byte[] head = new byte[64 * Sector];
        await image.ReadAsync(0, head);
        Assert.Equal(a, head);
        byte[] tail = new byte[64 * Sector];
        await image.ReadAsync(96 * Sector, tail);
        Assert.Equal(c, tail);

        var read = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await image.ReadAsync(60 * Sector, new byte[8 * Sector]));
        Assert.Contains("is NOACCESS: it cannot be read", read.Message, StringComparison.Ordinal);
        Assert.Contains("missing-flat.vmdk", read.Message, StringComparison.Ordinal);
        var write = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await image.WriteAsync(64 * Sector, new byte[Sector]));
        Assert.Contains("is NOACCESS: it cannot be written", write.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ZERO_extent_lines_parse_without_a_file_and_serialise_back()
    {
        VmdkDescriptor descriptor = VmdkDescriptor.Parse("version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 ZERO\nRDONLY 8 ZERO \"ignored\"\n", null);
        Assert.Equal(new VmdkExtentLine("RW", 2048, "ZERO", string.Empty, 0), descriptor.Extents[0]);
        Assert.Equal("RW 2048 ZERO", descriptor.Extents[0].ToString());
        Assert.Equal("RDONLY", descriptor.Extents[1].Access);
        Assert.Equal(descriptor.Extents, VmdkDescriptor.Parse(descriptor.Serialize(), null).Extents);
    }

    [Theory]
    [InlineData("RW 8 VMFSRDM \"disk-rdm.vmdk\"", "vmfsRawDeviceMap", "raw device map (VMFSRDM) onto 'disk-rdm.vmdk'")]
    [InlineData("RW 8 VMFSRAW \"/vmfs/devices/disks/naa.600\"", "vmfsRaw", "raw device map (VMFSRAW) onto '/vmfs/devices/disks/naa.600'")]
    public async Task Raw_device_maps_are_refused_naming_their_device(string extent, string createType, string expected)
    {
        string path = _dir.File("rdm.vmdk");
        await File.WriteAllTextAsync(path, $"version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"{createType}\"\n{extent}\n");
        var e = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await OpenAsync(path));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VMFS_flat_extents_are_read()
    {
        (byte[] a, _, _) = WriteExtentFiles();
        string path = _dir.File("vmfs.vmdk");
        await File.WriteAllTextAsync(path, "version=1\nCID=1\nparentCID=ffffffff\ncreateType=\"vmfs\"\nRW 64 VMFS \"a-flat.vmdk\"\n");
        await using IImage image = await OpenAsync(path);
        Assert.Equal(a, await ReadAllAsync(image));
    }
}

using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats.Vmdk;
using static ImgTool.Formats.Tests.Vmdk.VmdkTestImages;

namespace ImgTool.Formats.Tests.Vmdk;

/// <summary>Damaged and hostile VMDKs give a typed error with a clear message: no crash, hang or huge allocation.</summary>
public sealed class VmdkHostileTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(VmdkSparseHeader.GdOffsetOffset, 0x7fffffffL, "grain directory")]
    [InlineData(VmdkSparseHeader.RgdOffsetOffset, 0x7fffffffL, "redundant grain directory")]
    [InlineData(VmdkSparseHeader.GrainSizeOffset, 0L, "grain size")]
    [InlineData(VmdkSparseHeader.GrainSizeOffset, 1L << 40, "grain size")]
    [InlineData(VmdkSparseHeader.CapacityOffset, long.MaxValue, "capacity")]
    [InlineData(VmdkSparseHeader.OverheadOffset, 1L << 40, "truncated")]
    public async Task Bad_header_fields_are_refused_on_open(int fieldOffset, long value, string expected)
    {
        string path = _dir.File("h.vmdk");
        await CreateAsync(path, 4 * MiB);
        await Patch(path, fieldOffset, value);
        var e = await Assert.ThrowsAnyAsync<ImgToolException>(async () => await OpenAsync(path));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Too_many_grain_table_entries_are_refused()
    {
        string path = _dir.File("g.vmdk");
        await CreateAsync(path, 4 * MiB);
        await Patch32(path, VmdkSparseHeader.NumGtesPerGtOffset, 100_000);
        var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await OpenAsync(path));
        Assert.Contains("grain table entries", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_grain_table_past_the_end_of_the_file_is_a_corruption_error()
    {
        string path = _dir.File("t.vmdk");
        await CreateAsync(path, 4 * MiB);
        VmdkSparseHeader header = await HeaderOf(path);
        await Patch32(path, (long)header.GdOffsetSectors * 512, 0x00ffffff);
        await using IImage image = await OpenAsync(path);
        var e = await Assert.ThrowsAsync<ImageCorruptException>(async () => await image.ReadAsync(0, new byte[512]));
        Assert.Contains("past the end", e.Message, StringComparison.Ordinal);
        CheckReport report = await ((ICheckable)image).CheckAsync(CheckRepair.None);
        Assert.True(report.Corruptions > 0);
    }

    [Theory]
    [InlineData("../outside.vmdk")]
    [InlineData("/etc/hostname")]
    public async Task Extents_outside_the_descriptor_folder_are_refused(string extent)
    {
        string path = _dir.File("d.vmdk");
        await File.WriteAllTextAsync(path, $"# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"{extent}\" 0\n");
        var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await OpenAsync(path));
        Assert.Contains("outside the descriptor's folder", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("createType=\"monolithicFlat\"\nRW 8 FLAT \"x.vmdk\"\n", "invalid extent line")]
    [InlineData("createType=\"fancyNewType\"\nRW 8 FLAT \"x.vmdk\" 0\n", "unsupported VMDK image type")]
    [InlineData("createType=\"monolithicFlat\"\nRW 8 FANCY \"x.vmdk\"\n", "unsupported extent type")]
    [InlineData("createType=\"vmfsRawDeviceMap\"\nRW 8 VMFSRDM \"disk-rdm.vmdk\"\n", "raw device map (VMFSRDM) onto 'disk-rdm.vmdk'")]
    [InlineData("createType=\"vmfsPassthroughRawDeviceMap\"\nRW 8 VMFSRDM \"disk-rdmp.vmdk\"\n", "onto 'disk-rdmp.vmdk'")]
    [InlineData("createType=\"vmfsRaw\"\nRW 8 VMFSRAW \"/vmfs/devices/disks/vml.0100\"\n", "raw device map (VMFSRAW) onto '/vmfs/devices/disks/vml.0100'")]
    [InlineData("createType=\"monolithicFlat\"\n", "no usable extent")]
    [InlineData("createType=\"monolithicFlat\"\nRW 8 FLAT \"missing.vmdk\" 0\n", "missing.vmdk")]
    public async Task Bad_descriptors_give_clear_errors(string body, string expected)
    {
        string path = _dir.File("d.vmdk");
        await File.WriteAllTextAsync(path, $"version=1\nCID=1\nparentCID=ffffffff\n{body}");
        var e = await Assert.ThrowsAnyAsync<ImgToolException>(async () => await OpenAsync(path));
        Assert.Contains(expected, e.Message + e.FileName, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_broken_stream_footer_is_refused()
    {
        string path = _dir.File("s.vmdk");
        await CreateAsync(path, 4 * MiB, "subformat=streamOptimized");
        long length = new FileInfo(path).Length;
        await Patch32(path, length - 512 + VmdkMarker.TypeOffset, 9); // the end-of-stream marker's type
        var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await OpenAsync(path));
        Assert.Contains("footer", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_compressed_grain_with_a_bad_size_or_data_is_a_corruption_error()
    {
        string path = _dir.File("s.vmdk");
        await CreateAsync(path, 4 * MiB, "subformat=streamOptimized");
        await using (IImage image = await OpenAsync(path, readOnly: false))
        {
            await image.WriteAsync(0, Random(2 * Grain, 3));
        }

        // The first grain marker sits at the first grain boundary after the header and descriptor.
        const long marker = 128 * 512;
        await Patch32(path, marker + VmdkMarker.SizeOffset, int.MaxValue);
        await Patch32(path, marker + VmdkMarker.GrainHeaderBytes + 512 + VmdkMarker.GrainHeaderBytes, 0x12345678);
        await using IImage reader = await OpenAsync(path);
        var e = await Assert.ThrowsAsync<ImageCorruptException>(async () => await reader.ReadAsync(0, new byte[512]));
        Assert.Contains("bad size", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tiny_and_text_garbage_files_are_not_vmdk()
    {
        string path = _dir.File("tiny.vmdk");
        await File.WriteAllBytesAsync(path, "KD"u8.ToArray());
        await Assert.ThrowsAsync<ImageFormatException>(async () => await OpenAsync(path));
        await File.WriteAllBytesAsync(path, Encoding.ASCII.GetBytes("KDMV").Concat(new byte[100]).ToArray());
        await Assert.ThrowsAsync<ImageFormatException>(async () => await OpenAsync(path));
        await File.WriteAllTextAsync(path, "version=1\nthis is not a descriptor\n");
        await Assert.ThrowsAsync<ImageFormatException>(async () => await OpenAsync(path));
    }

    [Fact]
    public async Task Version_3_sparse_extents_open_read_only_only()
    {
        string path = _dir.File("v3.vmdk");
        await CreateAsync(path, MiB);
        await Patch32(path, VmdkSparseHeader.VersionOffset, 3);
        await using (IImage reader = await OpenAsync(path))
        {
            Assert.Equal(MiB, reader.SizeBytes);
        }

        var e = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await OpenAsync(path, readOnly: false));
        Assert.Contains("read-only", e.Message, StringComparison.Ordinal);
    }

    private static async Task<VmdkSparseHeader> HeaderOf(string path)
    {
        byte[] sector = new byte[512];
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read);
        await stream.ReadExactlyAsync(sector);
        return VmdkSparseHeader.Read(sector, path);
    }

    private static async Task Patch(string path, int offset, long value)
    {
        byte[] bytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        await PatchBytes(path, offset, bytes);
    }

    private static async Task Patch32(string path, long offset, uint value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        await PatchBytes(path, offset, bytes);
    }

    private static async Task PatchBytes(string path, long offset, byte[] bytes)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.Position = offset;
        await stream.WriteAsync(bytes);
    }
}

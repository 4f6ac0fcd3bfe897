using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats.Bochs;
using static ImgTool.Formats.Tests.ReadOnly.ReadOnlyTestSupport;

namespace ImgTool.Formats.Tests.Bochs;

/// <summary>Bochs growing images built byte by byte read as expected and as qemu-img reads them; hostile ones give one line.</summary>
public sealed class BochsTests : IDisposable
{
    private const int Extent = 4096;
    private const int Catalog = 512;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(BochsHeader.Version2)]
    [InlineData(BochsHeader.Version1)]
    public async Task Allocated_extents_read_their_sectors_by_bitmap(uint version)
    {
        string image = _dir.File("g.bochs");
        byte[] expected = await BuildAsync(image, version, truncateTail: 1000);
        await using IImage opened = await OpenAsync(image);
        Assert.Equal("bochs", opened.FormatName);
        Assert.Equal(expected.Length, opened.SizeBytes);
        Assert.Equal(expected, await ReadAllAsync(opened));
        if (version == BochsHeader.Version2)
        {
            Assert.Equal(expected, await QemuRawAsync(image, _dir));
        }

        // Unaligned reads are served too.
        byte[] piece = new byte[777];
        await opened.ReadAsync(Extent + 300, piece);
        Assert.Equal(expected.AsSpan(Extent + 300, 777).ToArray(), piece);
        BlockStatus status = await opened.GetStatusAsync(0, opened.SizeBytes);
        Assert.Equal((BlockStatusKind.Data, opened.SizeBytes, -1L), (status.Kind, status.LengthBytes, status.HostOffsetBytes));
    }

    [Theory]
    [InlineData(72, 0x200000u, "catalog size is too large")]
    [InlineData(72, 4u, "catalog size is too small")]
    [InlineData(80, 3000u, "must be a power of two")]
    [InlineData(80, 0x1000000u, "must be a power of two")]
    [InlineData(76, 0u, "bitmap size 0")]
    [InlineData(68, 0x7fff0000u, "reaches past the end of the file")]
    public async Task Hostile_headers_give_one_clear_line(int offset, uint value, string expected)
    {
        string image = _dir.File("h.bochs");
        await BuildAsync(image, BochsHeader.Version2);
        await Patch32LittleEndianAsync(image, offset, value);
        await FailsAsync(image, expected);
    }

    [Fact]
    public async Task A_catalog_entry_past_the_end_of_the_file_is_a_corruption()
    {
        string image = _dir.File("c.bochs");
        await BuildAsync(image, BochsHeader.Version2);
        await Patch32LittleEndianAsync(image, BochsHeader.SizeBytes + 4, 0x00ffffff);
        Assert.IsType<ImageCorruptException>(await FailsAsync(image, "past the end of the file"));
    }

    [Fact]
    public async Task Writes_are_refused_as_a_read_only_format()
    {
        string image = _dir.File("w.bochs");
        await BuildAsync(image, BochsHeader.Version2);
        var e = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await OpenAsync(image, readOnly: false));
        Assert.Contains("'bochs' is a read-only format", e.Message, StringComparison.Ordinal);
    }

    /// <summary>A 64 KiB disk in 4 KiB extents; extents 1, 5 and 15 are allocated (slots 0, 1, 2), each with the bitmap
    /// 0b10110101 in its first byte (sectors 0, 2, 4, 5, 7 present). Returns the disk's expected bytes.</summary>
    internal static async Task<byte[]> BuildAsync(string path, uint version, int truncateTail = 0)
    {
        const int disk = 64 * 1024;
        const int catalogEntries = disk / Extent;
        byte[] header = new byte[BochsHeader.SizeBytes];
        new BochsHeader(version, BochsHeader.SizeBytes, catalogEntries, Catalog, Extent, disk).Write(header);
        uint[] catalog = Enumerable.Repeat(0xffffffffu, catalogEntries).ToArray();
        catalog[1] = 0;
        catalog[5] = 1;
        catalog[15] = 2;
        var file = new List<byte>(header);
        foreach (uint entry in catalog)
        {
            byte[] le = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(le, entry);
            file.AddRange(le);
        }

        byte[] expected = new byte[disk];
        var random = new Random(11);
        foreach ((int extent, int slot) in (ReadOnlySpan<(int, int)>)[(1, 0), (5, 1), (15, 2)])
        {
            byte[] bitmap = new byte[Catalog];
            bitmap[0] = 0b10110101;
            byte[] data = new byte[Extent];
            random.NextBytes(data);
            file.AddRange(bitmap);
            file.AddRange(data);
            for (int sector = 0; sector < Extent / 512; sector++)
            {
                if ((bitmap[sector / 8] & (1 << (sector % 8))) != 0)
                {
                    data.AsSpan(sector * 512, 512).CopyTo(expected.AsSpan((extent * Extent) + (sector * 512)));
                }
            }
        }

        byte[] bytes = [.. file];
        if (truncateTail > 0)
        {
            // The last slot's data stops short of its end (never written): those bytes read as zeros.
            bytes = bytes[..^truncateTail];
            expected.AsSpan(disk - truncateTail).Clear();
        }

        await File.WriteAllBytesAsync(path, bytes);
        return expected;
    }
}

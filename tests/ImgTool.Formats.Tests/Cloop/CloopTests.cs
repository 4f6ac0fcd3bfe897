using System.Buffers.Binary;
using System.IO.Compression;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats.Cloop;
using static ImgTool.Formats.Tests.ReadOnly.ReadOnlyTestSupport;

namespace ImgTool.Formats.Tests.Cloop;

/// <summary>cloop images built byte by byte read as expected and as qemu-img reads them; hostile ones give one line.</summary>
public sealed class CloopTests : IDisposable
{
    private const int Block = 64 * 1024;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Zlib_blocks_read_as_the_data_they_compress()
    {
        string image = _dir.File("p.cloop");
        byte[] expected = await BuildAsync(image, 5);
        await using IImage opened = await OpenAsync(image);
        Assert.Equal("cloop", opened.FormatName);
        Assert.Equal(expected, await ReadAllAsync(opened));
        Assert.Equal(expected, await QemuRawAsync(image, _dir));
        byte[] piece = new byte[Block + 1000];
        await opened.ReadAsync(Block - 500, piece);
        Assert.Equal(expected.AsSpan(Block - 500, piece.Length).ToArray(), piece);
    }

    [Theory]
    [InlineData(CloopHeader.BlockSizeField, 0u, "must be a non-zero multiple of 512")]
    [InlineData(CloopHeader.BlockSizeField, 1000u, "must be a non-zero multiple of 512")]
    [InlineData(CloopHeader.BlockSizeField, 0x8000000u, "64 MiB or less")]
    [InlineData(CloopHeader.BlockCountField, 0x7fffffffu, "too many offsets")]
    [InlineData(CloopHeader.BlockCountField, 0x1000000u, "reaches past the end of the file")]
    public async Task Hostile_headers_give_one_clear_line(int offset, uint value, string expected)
    {
        string image = _dir.File("h.cloop");
        await BuildAsync(image, 3);
        await Patch32BigEndianAsync(image, offset, value);
        await FailsAsync(image, expected);
    }

    [Fact]
    public async Task Offsets_that_go_backwards_or_past_the_end_are_corruptions()
    {
        string image = _dir.File("o.cloop");
        await BuildAsync(image, 3);
        string back = _dir.File("back.cloop");
        File.Copy(image, back);
        await Patch64BigEndianAsync(back, CloopHeader.OffsetsField + 16, 10);
        Assert.IsType<ImageCorruptException>(await FailsAsync(back, "not monotonically increasing"));
        await Patch64BigEndianAsync(image, CloopHeader.OffsetsField + 24, 1UL << 40);
        Assert.IsType<ImageCorruptException>(await FailsAsync(image, "past the end of the file"));
    }

    /// <summary>A block whose zlib stream holds far more than one block (a small bomb) and one of garbage both fail
    /// with one line, after decompressing no more than a block.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_block_that_does_not_decompress_to_exactly_one_block_is_a_corruption(bool bomb)
    {
        string image = _dir.File("b.cloop");
        byte[] payload = bomb ? Zlib(new byte[64 * Block]) : [0x78, 0x9c, 1, 2, 3, 4, 5, 6];
        await WriteAsync(image, [Zlib(new byte[Block]), payload]);
        Assert.IsType<ImageCorruptException>(await FailsAsync(image, "does not decompress to 65536 bytes"));
    }

    private static byte[] Zlib(byte[] data)
    {
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, CompressionLevel.Optimal, leaveOpen: true))
        {
            zlib.Write(data);
        }

        return output.ToArray();
    }

    internal static async Task<byte[]> BuildAsync(string path, int blocks)
    {
        byte[] expected = new byte[blocks * Block];
        var random = new Random(5);
        var compressed = new List<byte[]>();
        for (int i = 0; i < blocks; i++)
        {
            Span<byte> block = expected.AsSpan(i * Block, Block);
            if (i % 2 == 0)
            {
                random.NextBytes(block[..(Block / 3)]);
            }

            compressed.Add(Zlib(block.ToArray()));
        }

        await WriteAsync(path, compressed);
        return expected;
    }

    private static async Task WriteAsync(string path, List<byte[]> compressed)
    {
        var file = new List<byte>();
        file.AddRange(CloopHeader.Preamble.ToArray());
        file.AddRange(new byte[CloopHeader.PreambleBytes - CloopHeader.Preamble.Length]);
        byte[] word = new byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(word, Block);
        file.AddRange(word[..4]);
        BinaryPrimitives.WriteUInt32BigEndian(word, (uint)compressed.Count);
        file.AddRange(word[..4]);
        long offset = CloopHeader.OffsetsField + ((compressed.Count + 1) * 8L);
        foreach (byte[] block in compressed.Append([]))
        {
            BinaryPrimitives.WriteUInt64BigEndian(word, (ulong)offset);
            file.AddRange(word);
            offset += block.Length;
        }

        foreach (byte[] block in compressed)
        {
            file.AddRange(block);
        }

        await File.WriteAllBytesAsync(path, [.. file]);
    }
}

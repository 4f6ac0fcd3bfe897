using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using ICSharpCode.SharpZipLib.BZip2;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats.Dmg;
using static ImgTool.Formats.Tests.ReadOnly.ReadOnlyTestSupport;

namespace ImgTool.Formats.Tests.Dmg;

/// <summary>UDIF images built byte by byte (block tables in an XML plist or a resource fork) read as expected and, where
/// qemu-img can read them (no bzip2 module in Debian's qemu-utils), as qemu-img does; hostile ones give one line.</summary>
public sealed class DmgTests : IDisposable
{
    private const int Sector = 512;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    internal sealed record Chunk(DmgChunkType Type, int FirstSector, int Sectors, byte[] Stored);

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task Zero_raw_zlib_ignore_and_bzip2_chunks_read_as_their_data(bool resourceFork, bool withBzip2)
    {
        (List<Chunk> chunks, byte[] expected) = Standard(withBzip2);
        string image = _dir.File("s.dmg");
        await WriteAsync(image, chunks, expected.Length / Sector, resourceFork);
        await using IImage opened = await OpenAsync(image);
        Assert.Equal("dmg", opened.FormatName);
        Assert.Equal(expected.Length, opened.SizeBytes);
        Assert.Equal(expected, await ReadAllAsync(opened));
        if (!withBzip2)
        {
            Assert.Equal(expected, await QemuRawAsync(image, _dir));
        }

        byte[] piece = new byte[3000];
        await opened.ReadAsync(4000, piece);
        Assert.Equal(expected.AsSpan(4000, 3000).ToArray(), piece);
    }

    [Theory]
    [InlineData(0x80000007u, "unsupported chunk type LZFSE (ULFO)")]
    [InlineData(0x80000008u, "unsupported chunk type LZMA (ULMO)")]
    [InlineData(0x12345u, "unsupported chunk type 0x00012345")]
    public async Task Chunks_of_unsupported_types_fail_when_read(uint typeValue, string expected)
    {
        var type = (DmgChunkType)typeValue;
        (List<Chunk> chunks, byte[] disk) = Standard(false);
        chunks.Add(new Chunk(type, disk.Length / Sector, 8, [1, 2, 3]));
        string image = _dir.File("u.dmg");
        await WriteAsync(image, chunks, (disk.Length / Sector) + 8, resourceFork: false);
        await using IImage opened = await OpenAsync(image);
        byte[] first = new byte[disk.Length];
        await opened.ReadAsync(0, first);
        Assert.Equal(disk, first);
        var e = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await opened.ReadAsync(disk.Length, new byte[Sector]));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    /// <summary>An ADC stream of all three phrase kinds (literal run, short and long copies, an overlapping copy).</summary>
    [Fact]
    public async Task ADC_chunks_read_as_the_data_they_compress()
    {
        byte[] adc = [0x83, 0xfe, 0xed, 0xfa, 0xce, 0x00, 0x00, 0x40, 0x00, 0x06];
        byte[] expected = [0xfe, 0xed, 0xfa, 0xce, 0xce, 0xce, 0xce, 0xfe, 0xed, 0xfa, 0xce];
        byte[] plain = new byte[Sector];
        Assert.True(DmgAdc.TryDecompress(adc, plain.AsSpan(0, expected.Length)));
        Assert.Equal(expected, plain[..expected.Length]);

        // One sector: the 11 bytes above, then 501 bytes copied from one byte back (0xce repeated) by long phrases.
        var stream = new List<byte>(adc);
        int remaining = Sector - expected.Length;
        while (remaining > 0)
        {
            int length = Math.Min(remaining, 67);
            if (length < 4)
            {
                stream.AddRange([(byte)(0x80 | (length - 1)), .. Enumerable.Repeat((byte)0xce, length)]);
            }
            else
            {
                stream.AddRange([(byte)(0x40 | (length - 4)), 0x00, 0x00]);
            }

            remaining -= length;
        }

        byte[] disk = new byte[Sector];
        expected.CopyTo(disk, 0);
        disk.AsSpan(expected.Length).Fill(0xce);
        string image = _dir.File("adc.dmg");
        await WriteAsync(image, [new(DmgChunkType.Adc, 0, 1, [.. stream])], 1, resourceFork: false);
        await using IImage opened = await OpenAsync(image);
        Assert.Equal(disk, await ReadAllAsync(opened));

        Assert.False(DmgAdc.TryDecompress([0x00, 0x05], new byte[3]), "a copy from before the start");
        Assert.False(DmgAdc.TryDecompress([0x85, 1, 2], new byte[6]), "a literal run past the input");
        Assert.False(DmgAdc.TryDecompress([0x80, 1, 0x40, 0x00, 0x00], new byte[4]), "more output than the chunk holds");
    }

    [Theory]
    [InlineData("pastEnd", "lies past the end of the file")]
    [InlineData("overlap", "chunks overlap")]
    [InlineData("hugeSectors", "is larger than the maximum")]
    [InlineData("hugeLength", "is larger than the maximum")]
    [InlineData("gap", "is not described by any chunk")]
    [InlineData("zlibBomb", "does not decompress to 4096 bytes")]
    [InlineData("bzip2Bomb", "does not decompress to 4096 bytes")]
    [InlineData("garbage", "does not decompress to 4096 bytes")]
    public async Task Hostile_block_tables_give_one_clear_line(string damage, string expected)
    {
        var chunks = new List<Chunk> { new(DmgChunkType.Zlib, 0, 8, Zlib(new byte[4096])), new(DmgChunkType.Zero, 8, 8, []) };
        int sectors = 16;
        switch (damage)
        {
            case "overlap": chunks.Add(new Chunk(DmgChunkType.Zero, 4, 2, [])); break;
            case "gap": chunks[1] = chunks[1] with { FirstSector = 10, Sectors = 6 }; break;
            case "zlibBomb": chunks[0] = chunks[0] with { Stored = Zlib(new byte[16 << 20]) }; break;
            case "bzip2Bomb": chunks[0] = new Chunk(DmgChunkType.Bzip2, 0, 8, Bzip2(new byte[16 << 20])); break;
            case "garbage": chunks[0] = chunks[0] with { Stored = [0x78, 0x9c, 9, 9, 9, 9] }; break;
        }

        string image = _dir.File("h.dmg");
        await WriteAsync(image, chunks, sectors, resourceFork: false, patch: damage switch
        {
            "pastEnd" => (0, 0x18, 1UL << 40),
            "hugeSectors" => (0, 0x10, 1UL << 30),
            "hugeLength" => (0, 0x20, 1UL << 30),
            _ => null,
        });
        var e = await FailsAsync(image, expected);
        Assert.True(e is ImageCorruptException or ImageFormatException, e.GetType().Name);
    }

    [Theory]
    [InlineData("noKoly", "could not locate the UDIF trailer")]
    [InlineData("plistOutside", "XML property list lies outside")]
    [InlineData("noTables", "neither a resource fork nor an XML property list")]
    [InlineData("badBase64", "not base64")]
    public async Task Hostile_trailers_give_one_clear_line(string damage, string expected)
    {
        string image = _dir.File("t.dmg");
        await WriteAsync(image, [new(DmgChunkType.Zero, 0, 8, [])], 8, resourceFork: false);
        long koly = new FileInfo(image).Length - DmgTrailer.SizeBytes;
        switch (damage)
        {
            case "noKoly": await PatchAsync(image, koly, "xxxx"u8.ToArray()); break;
            case "plistOutside": await Patch64BigEndianAsync(image, koly + 0xe0, 1UL << 40); break;
            case "noTables": await Patch64BigEndianAsync(image, koly + 0xe0, 0); break;
            case "badBase64":
                byte[] bytes = await File.ReadAllBytesAsync(image);
                int at = Encoding.ASCII.GetString(bytes).IndexOf("<data>", StringComparison.Ordinal) + 6;
                await PatchAsync(image, at, "!!!!"u8.ToArray());
                break;
        }

        await FailsAsync(image, expected);
    }

    [Fact]
    public async Task Writes_and_creates_are_refused_as_a_read_only_format()
    {
        string image = _dir.File("w.dmg");
        await WriteAsync(image, [new(DmgChunkType.Zero, 0, 8, [])], 8, resourceFork: false);
        var e = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await OpenAsync(image, readOnly: false));
        Assert.Contains("'dmg' is a read-only format", e.Message, StringComparison.Ordinal);
        await using IImage opened = await OpenAsync(image);
        await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await opened.WriteZeroesAsync(0, Sector, BlockZeroFlags.None));
    }

    /// <summary>zlib (sectors 0-7), raw stored short (8-15: only 3000 bytes stored), zero (16-31), ignore (32-39) and,
    /// optionally, bzip2 (40-47).</summary>
    internal static (List<Chunk> Chunks, byte[] Disk) Standard(bool withBzip2)
    {
        int sectors = withBzip2 ? 48 : 40;
        byte[] disk = new byte[sectors * Sector];
        var random = new Random(9);
        random.NextBytes(disk.AsSpan(0, 2000));
        random.NextBytes(disk.AsSpan(8 * Sector, 3000));
        var chunks = new List<Chunk>
        {
            new(DmgChunkType.Zlib, 0, 8, Zlib(disk[..(8 * Sector)])),
            new(DmgChunkType.Raw, 8, 8, disk[(8 * Sector)..((8 * Sector) + 3000)]),
            new(DmgChunkType.Zero, 16, 16, []),
            new(DmgChunkType.Ignore, 32, 8, []),
        };
        if (withBzip2)
        {
            random.NextBytes(disk.AsSpan(40 * Sector, 1000));
            chunks.Add(new Chunk(DmgChunkType.Bzip2, 40, 8, Bzip2(disk[(40 * Sector)..(48 * Sector)])));
        }

        return (chunks, disk);
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

    private static byte[] Bzip2(byte[] data)
    {
        using var output = new MemoryStream();
        using (var bzip2 = new BZip2OutputStream(output) { IsStreamOwner = false })
        {
            bzip2.Write(data);
        }

        return output.ToArray();
    }

    /// <summary>
    /// Writes a UDIF file: a data fork with the chunks' stored bytes, one mish table (with a comment entry and the
    /// last-entry mark, which readers drop), in an XML plist or a resource fork, then the koly trailer.
    /// <paramref name="patch"/> overwrites one 64-bit field of one chunk entry (entry index, field offset, value).
    /// </summary>
    internal static async Task WriteAsync(string path, List<Chunk> chunks, int sectors, bool resourceFork, (int Entry, int Field, ulong Value)? patch = null)
    {
        var file = new List<byte>();
        var entries = new List<(DmgChunkType, ulong, ulong, ulong, ulong)> { (DmgChunkType.Comment, 0, 0, 0, 0) };
        foreach (Chunk chunk in chunks)
        {
            entries.Add((chunk.Type, (ulong)chunk.FirstSector, (ulong)chunk.Sectors, (ulong)file.Count, (ulong)chunk.Stored.Length));
            file.AddRange(chunk.Stored);
        }

        entries.Add((DmgChunkType.Last, (ulong)sectors, 0, (ulong)file.Count, 0));
        byte[] table = DmgBlockTable.Write(0, (ulong)sectors, 0, entries);
        if (patch is { } p)
        {
            BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan(DmgBlockTable.HeaderBytes + ((p.Entry + 1) * DmgBlockTable.ChunkBytes) + p.Field), p.Value);
        }

        ulong dataForkLength = (ulong)file.Count;
        ulong resourceOffset = 0, resourceLength = 0, plistOffset = 0, plistLength = 0;
        if (resourceFork)
        {
            resourceOffset = (ulong)file.Count;
            byte[] fork = new byte[256 + 4 + table.Length + 64];
            BinaryPrimitives.WriteUInt32BigEndian(fork, 256);
            BinaryPrimitives.WriteUInt32BigEndian(fork.AsSpan(4), (uint)(256 + 4 + table.Length));
            BinaryPrimitives.WriteUInt32BigEndian(fork.AsSpan(8), (uint)(4 + table.Length));
            BinaryPrimitives.WriteUInt32BigEndian(fork.AsSpan(256), (uint)table.Length);
            table.CopyTo(fork, 260);
            file.AddRange(fork);
            resourceLength = (ulong)fork.Length;
        }
        else
        {
            string base64 = Convert.ToBase64String(table, Base64FormattingOptions.InsertLineBreaks).Replace("\r\n", "\n\t\t\t", StringComparison.Ordinal);
            string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n\t<key>resource-fork</key>\n\t<dict>\n\t\t<key>blkx</key>\n\t\t<array>\n\t\t\t<dict>\n"
                + "\t\t\t\t<key>Attributes</key>\n\t\t\t\t<string>0x0050</string>\n\t\t\t\t<key>Data</key>\n\t\t\t\t<data>\n\t\t\t" + base64 + "\n\t\t\t\t</data>\n"
                + "\t\t\t</dict>\n\t\t</array>\n\t\t<key>plst</key>\n\t\t<array>\n\t\t\t<dict>\n\t\t\t\t<key>Data</key>\n\t\t\t\t<data>AAAAAA==</data>\n\t\t\t</dict>\n\t\t</array>\n\t</dict>\n</dict>\n</plist>\n";
            plistOffset = (ulong)file.Count;
            byte[] bytes = Encoding.UTF8.GetBytes(xml);
            file.AddRange(bytes);
            plistLength = (ulong)bytes.Length;
        }

        byte[] trailer = new byte[DmgTrailer.SizeBytes];
        new DmgTrailer(4, 0, resourceOffset, resourceLength, plistOffset, plistLength, (ulong)sectors).Write(trailer);
        _ = dataForkLength;
        file.AddRange(trailer);
        await File.WriteAllBytesAsync(path, [.. file]);
    }
}

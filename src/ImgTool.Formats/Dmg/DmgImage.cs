using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;
using ImgTool.Formats.ReadOnly;

namespace ImgTool.Formats.Dmg;

/// <summary>
/// An opened UDIF disk image (.dmg): the koly trailer names the block tables (mish), found in the resource fork or,
/// base64 in &lt;data&gt; elements, in the XML property list. Their chunks, sorted and checked not to overlap, map the
/// disk's sectors to zero, raw, zlib, bzip2 or ADC data in the data fork; LZFSE and LZMA chunks are listed but a read
/// of them fails with "unsupported chunk type" (QEMU 7.2 reads neither ADC nor, without its module, LZFSE). QEMU's driver reports no block status, so the whole disk is data.
/// </summary>
internal sealed class DmgImage : ReadOnlyImage
{
    private readonly DmgChunk[] _chunks;
    private readonly long[] _starts;
    private readonly ChunkCache _cache = new(DmgLimits.CacheBytes);

    private DmgImage(IHostFile file, long sizeBytes, DmgChunk[] chunks)
        : base(file, "dmg", sizeBytes)
    {
        _chunks = chunks;
        _starts = [.. chunks.Select(c => c.FirstSector)];
    }

    public IReadOnlyList<DmgChunk> Chunks => _chunks;

    /// <summary>QEMU's dmg driver has no bdrv_get_info: qemu-img info shows no cluster size and no dirty flag.</summary>
    public override ImageDetails Details { get; } = new(ReportsDriverInfo: false);

    public override int Alignment => DmgLimits.SectorBytes;

    public static async ValueTask<DmgImage> OpenAsync(IHostFile file, CancellationToken cancellationToken)
    {
        long length = file.Length;
        if (length < DmgTrailer.SizeBytes)
        {
            throw new ImageFormatException("dmg file must be at least 512 bytes long", file.Path);
        }

        long windowOffset = length > 511 + 512 ? length - 511 - 512 : 0;
        byte[] window = new byte[Math.Min(length, 515)];
        await file.ReadZeroFilledAsync(windowOffset, window, cancellationToken).ConfigureAwait(false);
        long kolyOffset = DmgTrailer.FindOffset(window, windowOffset, file.Path);
        byte[] trailerBytes = new byte[DmgTrailer.SizeBytes];
        await file.ReadZeroFilledAsync(kolyOffset, trailerBytes, cancellationToken).ConfigureAwait(false);
        DmgTrailer trailer = DmgTrailer.Read(trailerBytes);
        if (trailer.DataForkOffset > (ulong)kolyOffset)
        {
            throw new ImageCorruptException("the data fork starts after the UDIF trailer", "koly", kolyOffset, file.Path);
        }

        if ((trailer.ResourceForkOffset >= (ulong)kolyOffset && trailer.ResourceForkLength != 0)
            || trailer.ResourceForkLength > (ulong)kolyOffset - Math.Min(trailer.ResourceForkOffset, (ulong)kolyOffset))
        {
            throw new ImageCorruptException("the resource fork lies outside the file before the UDIF trailer", "koly", kolyOffset, file.Path);
        }

        if ((trailer.PlistOffset >= (ulong)kolyOffset && trailer.PlistLength != 0)
            || trailer.PlistLength > (ulong)kolyOffset - Math.Min(trailer.PlistOffset, (ulong)kolyOffset))
        {
            throw new ImageCorruptException("the XML property list lies outside the file before the UDIF trailer", "koly", kolyOffset, file.Path);
        }

        if (trailer.SectorCount > DmgLimits.MaxSectorCount)
        {
            throw new ImageFormatException($"disk size of {trailer.SectorCount} sectors is larger than the largest supported ({DmgLimits.MaxSectorCount})", file.Path);
        }

        var chunks = new List<DmgChunk>();
        if (trailer.ResourceForkLength != 0)
        {
            await ReadResourceForkAsync(file, trailer, length, chunks, cancellationToken).ConfigureAwait(false);
        }
        else if (trailer.PlistLength != 0)
        {
            await ReadPlistAsync(file, trailer, length, chunks, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            throw new ImageFormatException("the UDIF trailer names neither a resource fork nor an XML property list: no block tables", file.Path);
        }

        chunks.Sort((a, b) => a.FirstSector.CompareTo(b.FirstSector));
        for (int i = 1; i < chunks.Count; i++)
        {
            if (chunks[i].FirstSector < chunks[i - 1].EndSector)
            {
                throw new ImageCorruptException($"chunks overlap: sectors {chunks[i].FirstSector}.. are described twice", "block table", 0, file.Path);
            }
        }

        return new DmgImage(file, (long)trailer.SectorCount * DmgLimits.SectorBytes, [.. chunks]);
    }

    public override async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        for (int done = 0; done < buffer.Length;)
        {
            long position = offsetBytes + done;
            long sector = position / DmgLimits.SectorBytes;
            int index = Array.BinarySearch(_starts, sector);
            index = index >= 0 ? index : ~index - 1;
            if (index < 0 || sector >= _chunks[index].EndSector)
            {
                throw Corrupt($"sector {sector} is not described by any chunk of the block tables", "block table", 0);
            }

            DmgChunk chunk = _chunks[index];
            long inChunk = position - (chunk.FirstSector * DmgLimits.SectorBytes);
            int piece = (int)Math.Min(buffer.Length - done, (chunk.SectorCount * DmgLimits.SectorBytes) - inChunk);
            Memory<byte> part = buffer.Slice(done, piece);
            switch (chunk.Type)
            {
                case DmgChunkType.Zero or DmgChunkType.Ignore:
                    part.Span.Clear();
                    break;
                case DmgChunkType.Raw:
                    // Sectors past the stored length read as zeros.
                    int stored = (int)Math.Clamp(chunk.LengthBytes - inChunk, 0, piece);
                    await HostFile.ReadZeroFilledAsync(chunk.OffsetBytes + inChunk, part[..stored], cancellationToken).ConfigureAwait(false);
                    part.Span[stored..].Clear();
                    break;
                case DmgChunkType.Zlib or DmgChunkType.Bzip2 or DmgChunkType.Adc:
                    byte[] data = await _cache.GetAsync(index, DecompressChunkAsync, cancellationToken).ConfigureAwait(false);
                    data.AsMemory((int)inChunk, piece).CopyTo(part);
                    break;
                default:
                    throw new UnsupportedFeatureException($"unsupported chunk type {DmgChunk.Describe(chunk.Type)} for sectors {chunk.FirstSector}..{chunk.EndSector - 1}", HostFile.Path);
            }

            done += piece;
        }
    }

    /// <summary>No block status in QEMU's driver: everything is data, with no host offset.</summary>
    public override ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, 1);
        return ValueTask.FromResult(new BlockStatus(BlockStatusKind.Data, Math.Min(lengthBytes, SizeBytes - offsetBytes)));
    }

    /// <summary>The resource fork (QEMU dmg_read_resource_fork): a data offset and length, then resources, each a
    /// 32-bit length and its bytes; the map after the data is not needed.</summary>
    private static async ValueTask ReadResourceForkAsync(IHostFile file, DmgTrailer trailer, long length, List<DmgChunk> chunks, CancellationToken cancellationToken)
    {
        long forkStart = (long)trailer.ResourceForkOffset;
        long forkLength = (long)trailer.ResourceForkLength;
        byte[] head = new byte[12];
        await file.ReadZeroFilledAsync(forkStart, head, cancellationToken).ConfigureAwait(false);
        uint dataOffset = BinaryPrimitives.ReadUInt32BigEndian(head);
        uint dataLength = BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(8));
        if (dataOffset > forkLength || dataLength == 0 || dataLength > forkLength - dataOffset)
        {
            throw new ImageCorruptException("the resource fork's data lies outside the fork", "resource fork", forkStart, file.Path);
        }

        long position = forkStart + dataOffset;
        long end = position + dataLength;
        byte[] lengthBytes = new byte[sizeof(uint)];
        while (position < end)
        {
            await file.ReadZeroFilledAsync(position, lengthBytes, cancellationToken).ConfigureAwait(false);
            uint resourceBytes = BinaryPrimitives.ReadUInt32BigEndian(lengthBytes);
            if (resourceBytes == 0 || resourceBytes > end - position - sizeof(uint) || resourceBytes > DmgLimits.MaxResourceBytes)
            {
                throw new ImageCorruptException($"a resource of {resourceBytes} bytes does not fit in the resource fork", "resource fork", position, file.Path);
            }

            position += sizeof(uint);
            byte[] resource = new byte[resourceBytes];
            await file.ReadZeroFilledAsync(position, resource, cancellationToken).ConfigureAwait(false);
            DmgBlockTable.Parse(resource, trailer.DataForkOffset, length, chunks, file.Path);
            position += resourceBytes;
        }
    }

    /// <summary>The XML property list (QEMU dmg_read_plist_xml): every &lt;data&gt; element is base64; those that
    /// decode to a mish table are block tables.</summary>
    private static async ValueTask ReadPlistAsync(IHostFile file, DmgTrailer trailer, long length, List<DmgChunk> chunks, CancellationToken cancellationToken)
    {
        if (trailer.PlistLength > DmgLimits.MaxPlistBytes)
        {
            throw new ImageFormatException($"the XML property list of {trailer.PlistLength} bytes is larger than the maximum ({DmgLimits.MaxPlistBytes})", file.Path);
        }

        byte[] bytes = new byte[trailer.PlistLength];
        await file.ReadZeroFilledAsync((long)trailer.PlistOffset, bytes, cancellationToken).ConfigureAwait(false);
        string xml = Encoding.UTF8.GetString(bytes);
        for (int at = xml.IndexOf("<data>", StringComparison.Ordinal); at >= 0; at = xml.IndexOf("<data>", at, StringComparison.Ordinal))
        {
            at += "<data>".Length;
            int end = xml.IndexOf("</data>", at, StringComparison.Ordinal);
            if (end < 0)
            {
                throw new ImageCorruptException("malformed XML property list: <data> without </data>", "plist", (long)trailer.PlistOffset + at, file.Path);
            }

            byte[] table;
            try
            {
                table = Convert.FromBase64String(xml[at..end]);
            }
            catch (FormatException)
            {
                throw new ImageCorruptException("malformed XML property list: a <data> element is not base64", "plist", (long)trailer.PlistOffset + at, file.Path);
            }

            DmgBlockTable.Parse(table, trailer.DataForkOffset, length, chunks, file.Path);
            at = end;
        }
    }

    private async ValueTask<byte[]> DecompressChunkAsync(long index, CancellationToken cancellationToken)
    {
        DmgChunk chunk = _chunks[index];
        int compressedBytes = (int)chunk.LengthBytes;
        byte[] compressed = ArrayPool<byte>.Shared.Rent(Math.Max(compressedBytes, 1));
        try
        {
            await HostFile.ReadZeroFilledAsync(chunk.OffsetBytes, compressed.AsMemory(0, compressedBytes), cancellationToken).ConfigureAwait(false);
            byte[] data = new byte[chunk.SectorCount * DmgLimits.SectorBytes];
            bool ok = chunk.Type switch
            {
                DmgChunkType.Zlib => ChunkDecompression.TryInflateZlib(compressed.AsSpan(0, compressedBytes), data),
                DmgChunkType.Bzip2 => ChunkDecompression.TryBunzip2(compressed.AsSpan(0, compressedBytes), data),
                _ => DmgAdc.TryDecompress(compressed.AsSpan(0, compressedBytes), data),
            };
            if (!ok)
            {
                throw Corrupt($"the {chunk.Type switch { DmgChunkType.Zlib => "zlib", DmgChunkType.Bzip2 => "bzip2", _ => "ADC" }} chunk for sectors {chunk.FirstSector}..{chunk.EndSector - 1} ({compressedBytes} bytes at offset {chunk.OffsetBytes}) does not decompress to {data.Length} bytes", "chunk", chunk.OffsetBytes);
            }

            return data;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }
}

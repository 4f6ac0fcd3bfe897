using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;
using ImgTool.Formats.ReadOnly;

namespace ImgTool.Formats.Cloop;

/// <summary>
/// An opened cloop image: block i of the disk is the zlib stream between offsets i and i + 1, decompressed whole to
/// exactly the block size. The offsets must grow and stay inside the file. QEMU's driver reports no block status, so
/// the whole disk is data.
/// </summary>
internal sealed class CloopImage : ReadOnlyImage
{
    private readonly long[] _offsets;
    private readonly int _blockBytes;
    private readonly ChunkCache _cache = new(CloopLimits.CacheBytes);

    private CloopImage(IHostFile file, CloopHeader header, long[] offsets)
        : base(file, "cloop", (long)header.BlockCount * header.BlockBytes)
    {
        _offsets = offsets;
        _blockBytes = (int)header.BlockBytes;
    }

    /// <summary>QEMU's cloop driver has no bdrv_get_info: qemu-img info shows no cluster size and no dirty flag.</summary>
    public override ImageDetails Details { get; } = new(ReportsDriverInfo: false);

    public override int Alignment => CloopLimits.SectorBytes;

    public static async ValueTask<CloopImage> OpenAsync(IHostFile file, CancellationToken cancellationToken)
    {
        long length = file.Length;
        byte[] headBytes = await ReadHeaderBytesAsync(file, CloopHeader.OffsetsField, "cloop", cancellationToken).ConfigureAwait(false);
        CloopHeader header = CloopHeader.Read(headBytes, file.Path);
        if (header.BlockBytes == 0 || header.BlockBytes % CloopLimits.SectorBytes != 0)
        {
            throw new ImageFormatException($"block size {header.BlockBytes} must be a non-zero multiple of 512", file.Path);
        }

        if (header.BlockBytes > CloopLimits.MaxBlockBytes)
        {
            throw new ImageFormatException($"block size {header.BlockBytes} must be {CloopLimits.MaxBlockBytes >> 20} MiB or less", file.Path);
        }

        long offsetsBytes = ((long)header.BlockCount + 1) * sizeof(ulong);
        if (offsetsBytes > CloopLimits.MaxOffsetsBytes)
        {
            throw new ImageFormatException($"image requires too many offsets ({header.BlockCount} blocks); try a larger block size", file.Path);
        }

        if (offsetsBytes > length - CloopHeader.OffsetsField)
        {
            throw new ImageCorruptException($"the offsets table ({header.BlockCount} blocks) reaches past the end of the file ({length} bytes)", "offsets table", CloopHeader.OffsetsField, file.Path);
        }

        byte[] raw = new byte[offsetsBytes];
        await file.ReadZeroFilledAsync(CloopHeader.OffsetsField, raw, cancellationToken).ConfigureAwait(false);
        long[] offsets = new long[header.BlockCount + 1];
        for (int i = 0; i < offsets.Length; i++)
        {
            ulong offset = BinaryPrimitives.ReadUInt64BigEndian(raw.AsSpan(i * sizeof(ulong)));
            long entryOffset = CloopHeader.OffsetsField + ((long)i * sizeof(ulong));
            if (offset > (ulong)length)
            {
                throw new ImageCorruptException($"offset {i} ({offset}) lies past the end of the file ({length} bytes)", "offsets table", entryOffset, file.Path);
            }

            offsets[i] = (long)offset;
            if (i > 0 && offsets[i] < offsets[i - 1])
            {
                throw new ImageCorruptException($"offsets not monotonically increasing at index {i}, image file is corrupt", "offsets table", entryOffset, file.Path);
            }

            if (i > 0 && offsets[i] - offsets[i - 1] > CloopLimits.MaxCompressedBlockBytes)
            {
                throw new ImageCorruptException($"invalid compressed block size at index {i}, image file is corrupt", "offsets table", entryOffset, file.Path);
            }
        }

        return new CloopImage(file, header, offsets);
    }

    public override async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        for (int done = 0; done < buffer.Length;)
        {
            long position = offsetBytes + done;
            long block = position / _blockBytes;
            int inBlock = (int)(position % _blockBytes);
            int piece = Math.Min(buffer.Length - done, _blockBytes - inBlock);
            byte[] data = await _cache.GetAsync(block, DecompressBlockAsync, cancellationToken).ConfigureAwait(false);
            data.AsMemory(inBlock, piece).CopyTo(buffer[done..]);
            done += piece;
        }
    }

    /// <summary>No block status in QEMU's driver: everything is data, with no host offset.</summary>
    public override ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, 1);
        return ValueTask.FromResult(new BlockStatus(BlockStatusKind.Data, Math.Min(lengthBytes, SizeBytes - offsetBytes)));
    }

    private async ValueTask<byte[]> DecompressBlockAsync(long block, CancellationToken cancellationToken)
    {
        long start = _offsets[block];
        int compressedBytes = (int)(_offsets[block + 1] - start);
        byte[] compressed = ArrayPool<byte>.Shared.Rent(Math.Max(compressedBytes, 1));
        try
        {
            await HostFile.ReadZeroFilledAsync(start, compressed.AsMemory(0, compressedBytes), cancellationToken).ConfigureAwait(false);
            byte[] data = new byte[_blockBytes];
            if (!ChunkDecompression.TryInflateZlib(compressed.AsSpan(0, compressedBytes), data))
            {
                throw Corrupt($"block {block} ({compressedBytes} bytes at offset {start}) does not decompress to {_blockBytes} bytes", "compressed block", start);
            }

            return data;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }
}

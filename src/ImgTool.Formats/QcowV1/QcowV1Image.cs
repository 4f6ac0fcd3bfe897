using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;
using ImgTool.Formats.ReadOnly;

namespace ImgTool.Formats.QcowV1;

/// <summary>
/// An opened qcow v1 image. Two levels of big-endian 64-bit tables map a guest cluster to the file: the L1 table
/// (read whole at open) names L2 tables; an L2 entry is 0 (unallocated: the backing file or zeros), a host offset, or,
/// with bit 63 set, a compressed cluster: raw deflate data whose length sits in the bits between 63 - cluster_bits
/// and 62, its offset in the bits below. Legacy AES encryption is not read (info still describes such an image).
/// </summary>
internal sealed class QcowV1Image : ReadOnlyImage, IBackingChain, IEncrypted
{
    private const ulong CompressedFlag = 1UL << 63;

    private readonly QcowV1Header _header;
    private readonly ulong[] _l1;
    private readonly int _clusterBytes;
    private readonly int _l2Bytes;
    private readonly ulong _compressedOffsetMask;
    private readonly long _fileLength;
    private readonly ChunkCache _l2Cache = new(QcowV1Limits.CacheBytes);
    private readonly ChunkCache _clusterCache = new(QcowV1Limits.CacheBytes);
    private readonly IImage? _backing;

    private QcowV1Image(IHostFile file, QcowV1Header header, ulong[] l1, string? backingFileName, IImage? backing)
        : base(file, "qcow", (long)(header.SizeBytes / 512 * 512))
    {
        _header = header;
        _l1 = l1;
        _clusterBytes = header.ClusterBytes;
        _l2Bytes = header.L2Entries * sizeof(ulong);
        _compressedOffsetMask = (1UL << (63 - header.ClusterBits)) - 1;
        _fileLength = file.Length;
        BackingFileName = backingFileName;
        _backing = backing;
    }

    public string? BackingFileName { get; }

    /// <summary>qcow v1 stores no backing format: the backing file is probed.</summary>
    public string? BackingFormat => null;

    public IBlockDevice? Backing => _backing;

    public string? EncryptionFormat => _header.CryptMethod == QcowV1Header.CryptAes ? "aes" : null;

    public bool IsUnlocked => _header.CryptMethod == QcowV1Header.CryptNone;

    public override ImageDetails Details => new(ClusterSizeBytes: _clusterBytes, Encrypted: !IsUnlocked);

    public static async ValueTask<QcowV1Image> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken)
    {
        long length = file.Length;
        byte[] headBytes = await ReadHeaderBytesAsync(file, QcowV1Header.SizeBytesOnDisk, "qcow", cancellationToken).ConfigureAwait(false);
        QcowV1Header header = QcowV1Header.Read(headBytes, file.Path);
        if (header.CryptMethod == QcowV1Header.CryptAes)
        {
            if (!context.MetadataOnly)
            {
                throw new UnsupportedFeatureException(
                    "qcow images with legacy AES encryption are not supported (its AES-CBC scheme with a password used as the key is insecure); decrypt with qemu-img convert first",
                    file.Path);
            }
        }
        else if (header.CryptMethod != QcowV1Header.CryptNone)
        {
            throw new ImageFormatException($"invalid encryption method {header.CryptMethod} in qcow header", file.Path);
        }

        int shift = header.ClusterBits + header.L2Bits;
        ulong l1Entries = (header.SizeBytes + (1UL << shift) - 1) >> shift;
        if (l1Entries * sizeof(ulong) > QcowV1Limits.MaxL1Bytes)
        {
            throw new ImageFormatException($"image too large: its L1 table would take {l1Entries * sizeof(ulong)} bytes (at most {QcowV1Limits.MaxL1Bytes})", file.Path);
        }

        int l1Bytes = (int)l1Entries * sizeof(ulong);
        if (header.L1TableOffset > (ulong)length || (ulong)l1Bytes > (ulong)length - header.L1TableOffset)
        {
            throw new ImageCorruptException($"L1 table ({l1Bytes} bytes at offset {header.L1TableOffset}) reaches past the end of the file ({length} bytes)", "L1 table", (long)Math.Min(header.L1TableOffset, long.MaxValue), file.Path);
        }

        byte[] l1Bytes8 = new byte[l1Bytes];
        await file.ReadZeroFilledAsync((long)header.L1TableOffset, l1Bytes8, cancellationToken).ConfigureAwait(false);
        ulong[] l1 = new ulong[l1Entries];
        int l2Bytes = header.L2Entries * sizeof(ulong);
        for (int i = 0; i < l1.Length; i++)
        {
            l1[i] = BinaryPrimitives.ReadUInt64BigEndian(l1Bytes8.AsSpan(i * sizeof(ulong)));
            if (l1[i] != 0 && (l1[i] > (ulong)length || (ulong)l2Bytes > (ulong)length - l1[i]))
            {
                throw new ImageCorruptException($"L1 entry {i} points to an L2 table at offset {l1[i]}, past the end of the file ({length} bytes)", "L1 table", (long)header.L1TableOffset + (i * sizeof(ulong)), file.Path);
            }
        }

        string? backingName = null;
        if (header.BackingFileOffset != 0)
        {
            if (header.BackingFileSize > QcowV1Limits.MaxBackingFileNameBytes)
            {
                throw new ImageFormatException("backing file name too long", file.Path);
            }

            if (header.BackingFileOffset > (ulong)length || header.BackingFileSize > (ulong)length - header.BackingFileOffset)
            {
                throw new ImageCorruptException("the backing file name lies past the end of the file", "header", (long)Math.Min(header.BackingFileOffset, long.MaxValue), file.Path);
            }

            byte[] name = new byte[header.BackingFileSize];
            await file.ReadZeroFilledAsync((long)header.BackingFileOffset, name, cancellationToken).ConfigureAwait(false);
            int nul = Array.IndexOf(name, (byte)0);
            backingName = Encoding.UTF8.GetString(name, 0, nul < 0 ? name.Length : nul);
            if (backingName.Length == 0)
            {
                backingName = null;
            }
        }

        IImage? backing = null;
        if (backingName is not null && context.OpenBackingAsync is { } openBacking)
        {
            try
            {
                backing = await openBacking(backingName, null, cancellationToken).ConfigureAwait(false);
            }
            catch (BackingFileException)
            {
                throw;
            }
            catch (ImgToolException e)
            {
                throw BackingFileErrors.CouldNotOpen(file.Path, backingName, e);
            }
        }

        return new QcowV1Image(file, header, l1, backingName, backing);
    }

    public override async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        if (!IsUnlocked)
        {
            throw new UnsupportedFeatureException("cannot read the guest data of a qcow image with legacy AES encryption", HostFile.Path);
        }

        for (int done = 0; done < buffer.Length;)
        {
            long position = offsetBytes + done;
            int inCluster = (int)(position & (_clusterBytes - 1));
            int piece = Math.Min(buffer.Length - done, _clusterBytes - inCluster);
            Memory<byte> part = buffer.Slice(done, piece);
            ulong entry = await GetL2EntryAsync(position, cancellationToken).ConfigureAwait(false);
            if (entry == 0)
            {
                await BackingRead.ReadOrZeroAsync(_backing, position, part, cancellationToken).ConfigureAwait(false);
            }
            else if ((entry & CompressedFlag) != 0)
            {
                byte[] cluster = await _clusterCache.GetAsync((long)entry, DecompressClusterAsync, cancellationToken).ConfigureAwait(false);
                cluster.AsMemory(inCluster, piece).CopyTo(part);
            }
            else
            {
                await HostFile.ReadZeroFilledAsync((long)entry + inCluster, part, cancellationToken).ConfigureAwait(false);
            }

            done += piece;
        }
    }

    /// <summary>As QEMU's qcow_co_block_status: compressed clusters are data without a host offset. Runs of clusters
    /// of one kind (host-contiguous for plain clusters) are reported together.</summary>
    public override async ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, 1);
        lengthBytes = Math.Min(lengthBytes, SizeBytes - offsetBytes);
        ulong first = await GetL2EntryAsync(offsetBytes, cancellationToken).ConfigureAwait(false);
        int inCluster = (int)(offsetBytes & (_clusterBytes - 1));
        long length = _clusterBytes - inCluster;
        while (length < lengthBytes)
        {
            ulong next = await GetL2EntryAsync(offsetBytes + length, cancellationToken).ConfigureAwait(false);
            bool same = first == 0 ? next == 0
                : (first & CompressedFlag) != 0 || !IsUnlocked ? next != 0 && ((next & CompressedFlag) != 0 || !IsUnlocked)
                : next != 0 && (next & CompressedFlag) == 0 && next == first + (ulong)(inCluster + length);
            if (!same)
            {
                break;
            }

            length += _clusterBytes;
        }

        length = Math.Min(length, lengthBytes);
        if (first == 0)
        {
            return new BlockStatus(BlockStatusKind.Unallocated, length, Allocated: false);
        }

        return (first & CompressedFlag) != 0 || !IsUnlocked
            ? new BlockStatus(BlockStatusKind.Data, length)
            : new BlockStatus(BlockStatusKind.Data, length, (long)first + inCluster);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_backing is not null)
        {
            await _backing.DisposeAsync().ConfigureAwait(false);
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The L2 entry of the cluster holding <paramref name="position"/>, range-checked against the file.</summary>
    private async ValueTask<ulong> GetL2EntryAsync(long position, CancellationToken cancellationToken)
    {
        long cluster = position >> _header.ClusterBits;
        long l1Index = cluster >> _header.L2Bits;
        ulong l2Offset = _l1[l1Index];
        if (l2Offset == 0)
        {
            return 0;
        }

        byte[] table = await _l2Cache.GetAsync((long)l2Offset, ReadL2Async, cancellationToken).ConfigureAwait(false);
        int l2Index = (int)(cluster & (_header.L2Entries - 1));
        ulong entry = BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(l2Index * sizeof(ulong)));
        if (entry == 0)
        {
            return 0;
        }

        long entryOffset = (long)l2Offset + (l2Index * sizeof(ulong));
        if ((entry & CompressedFlag) != 0)
        {
            ulong host = entry & _compressedOffsetMask;
            ulong compressedBytes = (entry >> (63 - _header.ClusterBits)) & (ulong)(_clusterBytes - 1);
            if (host > (ulong)_fileLength || compressedBytes > (ulong)_fileLength - host)
            {
                throw Corrupt($"the compressed cluster for guest offset {position} ({compressedBytes} bytes at {host}) lies past the end of the file", "L2 table", entryOffset);
            }
        }
        else if (entry >= (ulong)_fileLength)
        {
            throw Corrupt($"the cluster for guest offset {position} is at host offset {entry}, past the end of the file ({_fileLength} bytes)", "L2 table", entryOffset);
        }

        return entry;
    }

    private async ValueTask<byte[]> ReadL2Async(long offsetBytes, CancellationToken cancellationToken)
    {
        byte[] table = new byte[_l2Bytes];
        await HostFile.ReadZeroFilledAsync(offsetBytes, table, cancellationToken).ConfigureAwait(false);
        return table;
    }

    private async ValueTask<byte[]> DecompressClusterAsync(long key, CancellationToken cancellationToken)
    {
        ulong entry = (ulong)key;
        long host = (long)(entry & _compressedOffsetMask);
        int compressedBytes = (int)((entry >> (63 - _header.ClusterBits)) & (ulong)(_clusterBytes - 1));
        byte[] compressed = ArrayPool<byte>.Shared.Rent(Math.Max(compressedBytes, 1));
        try
        {
            await HostFile.ReadZeroFilledAsync(host, compressed.AsMemory(0, compressedBytes), cancellationToken).ConfigureAwait(false);
            byte[] cluster = new byte[_clusterBytes];
            if (!ChunkDecompression.TryInflateRaw(compressed.AsSpan(0, compressedBytes), cluster))
            {
                throw Corrupt($"the compressed cluster at host offset {host} ({compressedBytes} bytes) does not decompress to {_clusterBytes} bytes", "compressed cluster", host);
            }

            return cluster;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compressed);
        }
    }
}

using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;
using ImgTool.Formats.ReadOnly;

namespace ImgTool.Formats.Parallels;

/// <summary>
/// An opened Parallels image: the BAT maps each cluster to the file (0: not allocated, reads as zeros). Every BAT
/// entry is checked at open against the spec's rules that matter to a reader: not below the data area, not past the
/// end of the file, no two entries on one cluster.
/// </summary>
internal sealed class ParallelsImage : ReadOnlyImage, ICheckable
{
    private readonly ParallelsHeader _header;
    private readonly uint[] _bat;
    private readonly long _clusterBytes;
    private readonly long _unitBytes;

    private ParallelsImage(IHostFile file, ParallelsHeader header, uint[] bat, IReadOnlyList<ParallelsDirtyBitmap> bitmaps)
        : base(file, "parallels", (long)header.EffectiveSectorCount * ParallelsLimits.SectorBytes)
    {
        _header = header;
        _bat = bat;
        _clusterBytes = header.ClusterBytes;
        _unitBytes = header.BatUnitBytes;
        DirtyBitmaps = bitmaps;
    }

    public ParallelsHeader Header => _header;

    /// <summary>The dirty bitmaps of the format extension (QEMU loads them as block dirty bitmaps; qemu-img shows none).</summary>
    public IReadOnlyList<ParallelsDirtyBitmap> DirtyBitmaps { get; }

    /// <summary>QEMU's parallels driver has no bdrv_get_info: qemu-img info shows no cluster size and no dirty flag.</summary>
    public override ImageDetails Details { get; } = new(ReportsDriverInfo: false);

    public static async ValueTask<ParallelsImage> OpenAsync(IHostFile file, CancellationToken cancellationToken)
    {
        long length = file.Length;
        byte[] headBytes = await ReadHeaderBytesAsync(file, ParallelsHeader.SizeBytes, "Parallels", cancellationToken).ConfigureAwait(false);
        ParallelsHeader header = ParallelsHeader.Read(headBytes, file.Path);
        long batBytes = (long)header.BatEntries * sizeof(uint);
        if (batBytes > length - ParallelsHeader.SizeBytes)
        {
            throw new ImageCorruptException($"the BAT ({header.BatEntries} entries) reaches past the end of the file ({length} bytes)", "BAT", ParallelsHeader.SizeBytes, file.Path);
        }

        byte[] batBytesRead = new byte[batBytes];
        await file.ReadZeroFilledAsync(ParallelsHeader.SizeBytes, batBytesRead, cancellationToken).ConfigureAwait(false);
        uint[] bat = new uint[header.BatEntries];
        for (int i = 0; i < bat.Length; i++)
        {
            bat[i] = BinaryPrimitives.ReadUInt32LittleEndian(batBytesRead.AsSpan(i * sizeof(uint)));
        }

        long dataStart = header.DataOffsetSectors != 0
            ? (long)header.DataOffsetSectors * ParallelsLimits.SectorBytes
            : (ParallelsHeader.SizeBytes + batBytes + ParallelsLimits.SectorBytes - 1) / ParallelsLimits.SectorBytes * ParallelsLimits.SectorBytes;
        ValidateBat(bat, header, dataStart, length, file.Path);

        IReadOnlyList<ParallelsDirtyBitmap> bitmaps = header.ExtensionOffsetSectors != 0
            ? await ParallelsExtension.ReadAsync(file, header, length, cancellationToken).ConfigureAwait(false)
            : [];
        return new ParallelsImage(file, header, bat, bitmaps);
    }

    public override async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        for (int done = 0; done < buffer.Length;)
        {
            long position = offsetBytes + done;
            long index = position / _clusterBytes;
            long inCluster = position % _clusterBytes;
            int piece = (int)Math.Min(buffer.Length - done, _clusterBytes - inCluster);
            Memory<byte> part = buffer.Slice(done, piece);
            long host = HostOffset(index);
            if (host < 0)
            {
                part.Span.Clear();
            }
            else
            {
                await HostFile.ReadZeroFilledAsync(host + inCluster, part, cancellationToken).ConfigureAwait(false);
            }

            done += piece;
        }
    }

    /// <summary>As QEMU: allocated clusters are data at their host offset (runs of host-contiguous clusters together),
    /// the others unallocated.</summary>
    public override ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, 1);
        lengthBytes = Math.Min(lengthBytes, SizeBytes - offsetBytes);
        long index = offsetBytes / _clusterBytes;
        long inCluster = offsetBytes % _clusterBytes;
        long first = HostOffset(index);
        long length = _clusterBytes - inCluster;
        while (length < lengthBytes)
        {
            long next = HostOffset(++index);
            if (first < 0 ? next >= 0 : next != first + inCluster + length)
            {
                break;
            }

            length += _clusterBytes;
        }

        length = Math.Min(length, lengthBytes);
        return ValueTask.FromResult(first < 0
            ? new BlockStatus(BlockStatusKind.Unallocated, length, Allocated: false)
            : new BlockStatus(BlockStatusKind.Data, length, first + inCluster));
    }

    /// <summary>
    /// QEMU's parallels check, without repair (the format is read-only here): an image left in use is a corruption,
    /// file space past the last allocated cluster is leaked (in clusters), and the allocation statistics are counted
    /// as QEMU counts them (a cluster not host-contiguous with the one before it is fragmented). Clusters past the end of
    /// the file cannot occur: the open refuses them.
    /// </summary>
    public ValueTask<CheckReport> CheckAsync(CheckRepair repair, CancellationToken cancellationToken = default)
    {
        if (repair != CheckRepair.None)
        {
            throw new UnsupportedFeatureException("'parallels' is a read-only format: imgtool reads it, but cannot create or write it", HostFile.Path);
        }

        var findings = new List<CheckFinding>();
        if (_header.InUse == ParallelsHeader.InUseOpen)
        {
            findings.Add(new CheckFinding(CheckSeverity.Corruption, "header", 0, "image was not closed correctly", false));
        }

        long fileLength = HostFile.Length;
        long allocated = 0, fragmented = 0, highest = 0, previous = 0;
        for (int i = 0; i < _bat.Length; i++)
        {
            long host = _bat[i] * _unitBytes;
            if (host == 0)
            {
                previous = 0;
                continue;
            }

            allocated++;
            highest = Math.Max(highest, host);
            if (previous != 0 && previous + _clusterBytes != host)
            {
                fragmented++;
            }

            previous = host;
        }

        long end = highest + _clusterBytes;
        long leaks = 0;
        if (fileLength > end)
        {
            leaks = (fileLength - end + _clusterBytes - 1) / _clusterBytes;
            findings.Add(new CheckFinding(CheckSeverity.Leak, "data area", end, $"space leaked at the end of the image {fileLength - end}", false));
        }

        return ValueTask.FromResult(new CheckReport
        {
            Findings = findings,
            Corruptions = findings.Count(f => f.Severity == CheckSeverity.Corruption),
            Leaks = leaks,
            ImageEndOffset = end,
            TotalClusters = _bat.Length,
            AllocatedClusters = allocated,
            FragmentedClusters = fragmented,
            CompressedClusters = 0,
        });
    }

    private static void ValidateBat(uint[] bat, ParallelsHeader header, long dataStart, long fileLength, string path)
    {
        long unit = header.BatUnitBytes;
        var used = new HashSet<uint>();
        for (int i = 0; i < bat.Length; i++)
        {
            if (bat[i] == 0)
            {
                continue;
            }

            long host = bat[i] * unit;
            long entryOffset = ParallelsHeader.SizeBytes + ((long)i * sizeof(uint));
            if (host < dataStart)
            {
                throw new ImageCorruptException($"BAT entry {i} points to offset {host}, inside the header and BAT (the data area starts at {dataStart})", "BAT", entryOffset, path);
            }

            if (host >= fileLength)
            {
                throw new ImageCorruptException($"BAT entry {i} points to offset {host}, past the end of the file ({fileLength} bytes)", "BAT", entryOffset, path);
            }

            if (!used.Add(bat[i]))
            {
                throw new ImageCorruptException($"BAT entry {i} points to offset {host}, which another entry already uses", "BAT", entryOffset, path);
            }
        }
    }

    /// <summary>Where cluster <paramref name="index"/> is in the file, or -1 when it is not allocated (or past the BAT).</summary>
    private long HostOffset(long index) => index < _bat.Length && _bat[index] != 0 ? _bat[index] * _unitBytes : -1;
}

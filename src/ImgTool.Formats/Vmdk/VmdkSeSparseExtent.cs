using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vmdk;

/// <summary>
/// An ESXi seSparse extent (space-efficient sparse, the default for ESXi 6.5+ snapshots), read-only. The format is not
/// officially documented; the layout and the strict checks follow QEMU's block/vmdk.c: a constant header (magic
/// 0xcafebabe, version 2.1, 4 KiB grains, 4096-entry grain tables), a volatile header (magic 0xcafecafe, no journal
/// to replay), a grain directory of 64-bit entries 0x1000_0000_iiii_iiii naming grain table i, and grain table
/// entries whose top nibble says unallocated (0), unmapped or zero (1, 2) or allocated (3, with a 60-bit cluster
/// number split into its low 12 and high 48 bits).
/// </summary>
internal sealed class VmdkSeSparseExtent : VmdkExtent
{
    public const ulong ConstHeaderMagic = 0xcafebabe;
    public const ulong VolatileHeaderMagic = 0xcafecafe;
    public const ulong SupportedVersion = 0x0000000200000001;
    public const ulong GrainSectors = 8;
    public const ulong GrainTableSectors = 64;

    // Constant header fields, all u64 (QEMU's VMDKSESparseConstHeader).
    public const int MagicOffset = 0;
    public const int VersionOffset = MagicOffset + 8;
    public const int CapacityOffset = VersionOffset + 8;
    public const int GrainSizeOffset = CapacityOffset + 8;
    public const int GrainTableSizeOffset = GrainSizeOffset + 8;
    public const int FlagsOffset = GrainTableSizeOffset + 8;
    public const int Reserved1Offset = FlagsOffset + 8;
    public const int VolatileHeaderOffsetOffset = Reserved1Offset + (4 * 8);
    public const int VolatileHeaderSizeOffset = VolatileHeaderOffsetOffset + 8;
    public const int JournalHeaderOffsetOffset = VolatileHeaderSizeOffset + 8;
    public const int JournalOffsetOffset = JournalHeaderOffsetOffset + 16;
    public const int GrainDirOffsetOffset = JournalOffsetOffset + 16;
    public const int GrainDirSizeOffset = GrainDirOffsetOffset + 8;
    public const int GrainTablesOffsetOffset = GrainDirSizeOffset + 8;
    public const int GrainTablesSizeOffset = GrainTablesOffsetOffset + 8;
    public const int FreeBitmapOffsetOffset = GrainTablesSizeOffset + 8;
    public const int BackmapOffsetOffset = FreeBitmapOffsetOffset + 16;
    public const int GrainsOffsetOffset = BackmapOffsetOffset + 16;
    public const int GrainsSizeOffset = GrainsOffsetOffset + 8;
    public const int ConstPadOffset = GrainsSizeOffset + 8;

    // Volatile header fields.
    public const int VolatileMagicOffset = 0;
    public const int FreeGtNumberOffset = VolatileMagicOffset + 8;
    public const int NextTxnSeqNumberOffset = FreeGtNumberOffset + 8;
    public const int ReplayJournalOffset = NextTxnSeqNumberOffset + 8;
    public const int VolatilePadOffset = ReplayJournalOffset + 8;

    private const int EntriesPerTable = (int)(GrainTableSectors * VmdkLimits.SectorBytes / sizeof(ulong));
    private const long GrainBytesConst = (long)GrainSectors * VmdkLimits.SectorBytes;

    private readonly ulong[] _gd;
    private readonly ulong[]?[] _tables;
    private readonly long _tablesOffsetSectors;
    private readonly long _grainsOffsetSectors;
    private readonly SemaphoreSlim _lock = new(1, 1);

    // Tables loaded from the file, oldest first; beyond the cache budget the oldest are dropped (under _lock).
    private readonly Queue<int> _cachedTables = new();

    private VmdkSeSparseExtent(IHostFile file, long startBytes, long sizeBytes, string type, bool ownsFile, ulong[] gd, long tablesOffsetSectors, long grainsOffsetSectors)
        : base(file, startBytes, sizeBytes, type, ownsFile)
    {
        _gd = gd;
        _tables = new ulong[]?[gd.Length];
        _tablesOffsetSectors = tablesOffsetSectors;
        _grainsOffsetSectors = grainsOffsetSectors;
    }

    public override bool IsFlat => false;

    public override long GrainBytes => GrainBytesConst;

    public override bool IsCompressed => false;

    public static async ValueTask<VmdkSeSparseExtent> OpenAsync(IHostFile file, long startBytes, string type, bool ownsFile, bool readOnly, CancellationToken cancellationToken)
    {
        if (!readOnly)
        {
            throw new UnsupportedFeatureException("seSparse extents can only be opened read-only", file.Path);
        }

        long fileLength = file.Length;
        byte[] header = new byte[VmdkLimits.SectorBytes];
        await file.ReadZeroFilledAsync(0, header, cancellationToken).ConfigureAwait(false);
        ulong U64(int offset) => BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(offset));
        if (U64(MagicOffset) != ConstHeaderMagic)
        {
            throw new ImageFormatException($"bad seSparse constant header magic 0x{U64(MagicOffset):x16}", file.Path);
        }

        if (U64(VersionOffset) != SupportedVersion)
        {
            throw new UnsupportedFeatureException($"unsupported seSparse version 0x{U64(VersionOffset):x16}", file.Path);
        }

        if (U64(GrainSizeOffset) != GrainSectors || U64(GrainTableSizeOffset) != GrainTableSectors)
        {
            throw new UnsupportedFeatureException($"unsupported seSparse grain size {U64(GrainSizeOffset)} or grain table size {U64(GrainTableSizeOffset)}", file.Path);
        }

        if (U64(FlagsOffset) != 0 || U64(Reserved1Offset) != 0 || U64(Reserved1Offset + 8) != 0 || U64(Reserved1Offset + 16) != 0 || U64(Reserved1Offset + 24) != 0
            || header.AsSpan(ConstPadOffset).IndexOfAnyExcept((byte)0) >= 0)
        {
            throw new UnsupportedFeatureException("unsupported seSparse flags, reserved fields or padding", file.Path);
        }

        ulong capacity = U64(CapacityOffset);
        if (capacity == 0 || capacity > (ulong)VmdkLimits.MaxCapacitySectors)
        {
            throw new ImageFormatException($"invalid seSparse capacity of {capacity} sectors", file.Path);
        }

        ulong volatileSector = U64(VolatileHeaderOffsetOffset);
        if (volatileSector >= (ulong)(fileLength / VmdkLimits.SectorBytes))
        {
            throw new ImageCorruptException("the seSparse volatile header lies past the end of the file", "constant header", VolatileHeaderOffsetOffset, file.Path);
        }

        byte[] volatileHeader = new byte[VmdkLimits.SectorBytes];
        await file.ReadZeroFilledAsync((long)volatileSector * VmdkLimits.SectorBytes, volatileHeader, cancellationToken).ConfigureAwait(false);
        if (BinaryPrimitives.ReadUInt64LittleEndian(volatileHeader) != VolatileHeaderMagic)
        {
            throw new ImageFormatException("bad seSparse volatile header magic", file.Path);
        }

        if (BinaryPrimitives.ReadUInt64LittleEndian(volatileHeader.AsSpan(ReplayJournalOffset)) != 0)
        {
            throw new UnsupportedFeatureException("the seSparse image is dirty; replaying its journal is not supported", file.Path);
        }

        ulong gdSector = U64(GrainDirOffsetOffset);
        ulong gdSectors = U64(GrainDirSizeOffset);
        ulong gdEntries = gdSectors * VmdkLimits.SectorBytes / sizeof(ulong);
        if (gdEntries > (ulong)VmdkLimits.MaxGrainDirectoryEntries
            || gdSector > (ulong)(fileLength / VmdkLimits.SectorBytes)
            || ((long)gdSector * VmdkLimits.SectorBytes) + ((long)gdEntries * sizeof(ulong)) > fileLength)
        {
            throw new ImageCorruptException("the seSparse grain directory lies past the end of the file or is too large", "grain directory", GrainDirOffsetOffset, file.Path);
        }

        ulong tablesSector = U64(GrainTablesOffsetOffset);
        ulong grainsSector = U64(GrainsOffsetOffset);
        if (tablesSector > (ulong)VmdkLimits.MaxCapacitySectors || grainsSector > (ulong)VmdkLimits.MaxCapacitySectors)
        {
            throw new ImageCorruptException("seSparse grain table or grain area offset out of range", "constant header", GrainTablesOffsetOffset, file.Path);
        }

        byte[] raw = new byte[gdEntries * sizeof(ulong)];
        await file.ReadZeroFilledAsync((long)gdSector * VmdkLimits.SectorBytes, raw, cancellationToken).ConfigureAwait(false);
        ulong[] gd = new ulong[gdEntries];
        for (int i = 0; i < gd.Length; i++)
        {
            gd[i] = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(i * sizeof(ulong)));
        }

        long coverage = GrainBytesConst * EntriesPerTable;
        long sizeBytes = (long)capacity * VmdkLimits.SectorBytes;
        if ((sizeBytes + coverage - 1) / coverage > gd.Length)
        {
            throw new ImageFormatException("the seSparse grain directory does not cover the capacity", file.Path);
        }

        return new VmdkSeSparseExtent(file, startBytes, sizeBytes, type, ownsFile, gd, (long)tablesSector, (long)grainsSector);
    }

    public override async ValueTask<VmdkRun> MapAsync(long offsetBytes, long maxLengthBytes, CancellationToken cancellationToken)
    {
        long grain = offsetBytes / GrainBytesConst;
        long inGrain = offsetBytes % GrainBytesConst;
        (VmdkRunKind kind, long sector) = await EntryAsync(grain, cancellationToken).ConfigureAwait(false);
        long length = Math.Min(maxLengthBytes, GrainBytesConst - inGrain);
        long nextSector = sector + (long)GrainSectors;
        while (length < maxLengthBytes && offsetBytes + length < SizeBytes)
        {
            (VmdkRunKind nextKind, long s) = await EntryAsync(++grain, cancellationToken).ConfigureAwait(false);
            if (nextKind != kind || (kind == VmdkRunKind.Data && s != nextSector))
            {
                break;
            }

            nextSector = s + (long)GrainSectors;
            length = Math.Min(maxLengthBytes, length + GrainBytesConst);
        }

        long host = kind == VmdkRunKind.Data ? (sector * VmdkLimits.SectorBytes) + inGrain : -1;
        return new VmdkRun(kind, Math.Min(length, SizeBytes - offsetBytes), host, false);
    }

    public override ValueTask ReadDataAsync(long offsetBytes, Memory<byte> buffer, VmdkRun run, CancellationToken cancellationToken) =>
        File.ReadZeroFilledAsync(run.HostOffsetBytes, buffer, cancellationToken);

    public override ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, BackingReader backing, CancellationToken cancellationToken) =>
        throw new UnsupportedFeatureException("seSparse extents are read-only", File.Path);

    public override ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, bool hasBacking, BackingReader backing, CancellationToken cancellationToken) =>
        throw new UnsupportedFeatureException("seSparse extents are read-only", File.Path);

    public override async ValueTask CheckAsync(List<CheckFinding> findings, CancellationToken cancellationToken)
    {
        long fileLength = File.Length;
        long grains = (SizeBytes + GrainBytesConst - 1) / GrainBytesConst;
        for (long grain = 0; grain < grains; grain++)
        {
            try
            {
                (VmdkRunKind kind, long sector) = await EntryAsync(grain, cancellationToken).ConfigureAwait(false);
                if (kind == VmdkRunKind.Data && sector * VmdkLimits.SectorBytes >= fileLength)
                {
                    findings.Add(new CheckFinding(CheckSeverity.Corruption, "grain table", -1, $"grain offset for sector {(StartBytes + (grain * GrainBytesConst)) / VmdkLimits.SectorBytes} points after EOF", false));
                }
            }
            catch (ImageCorruptException e)
            {
                findings.Add(new CheckFinding(CheckSeverity.Corruption, e.Structure, e.OffsetBytes, e.Message, false));
                grain = ((grain / EntriesPerTable) + 1) * EntriesPerTable - 1;
            }
        }
    }

    public override void Dispose()
    {
        _lock.Dispose();
        base.Dispose();
    }

    private async ValueTask<(VmdkRunKind Kind, long Sector)> EntryAsync(long grain, CancellationToken cancellationToken)
    {
        int gdIndex = (int)(grain / EntriesPerTable);
        ulong[]? table = await GetTableAsync(gdIndex, cancellationToken).ConfigureAwait(false);
        if (table is null)
        {
            return (VmdkRunKind.Unallocated, 0);
        }

        ulong entry = table[grain % EntriesPerTable];
        switch (entry >> 60)
        {
            case 0 when entry == 0:
                return (VmdkRunKind.Unallocated, 0);
            case 1 or 2:
                // Unmapped (SCSI UNMAP) and zero grains both read as zeros.
                return (VmdkRunKind.Zero, 0);
            case 3:
                ulong cluster = ((entry & 0x0fff000000000000) >> 48) | ((entry & 0x0000ffffffffffff) << 12);
                if (cluster > (ulong)(VmdkLimits.MaxCapacitySectors / (long)GrainSectors))
                {
                    break;
                }

                return (VmdkRunKind.Data, _grainsOffsetSectors + ((long)cluster * (long)GrainSectors));
        }

        throw new ImageCorruptException($"invalid seSparse grain table entry 0x{entry:x16} for grain {grain}", "grain table", -1, File.Path);
    }

    private async ValueTask<ulong[]?> GetTableAsync(int gdIndex, CancellationToken cancellationToken)
    {
        if (gdIndex >= _gd.Length)
        {
            throw new ImageCorruptException($"grain directory index {gdIndex} is out of range", "grain directory", -1, File.Path);
        }

        ulong[]? table = Volatile.Read(ref _tables[gdIndex]);
        ulong entry = _gd[gdIndex];
        if (table is not null || entry == 0)
        {
            return table;
        }

        if ((entry & 0xffffffff00000000) != 0x1000000000000000)
        {
            throw new ImageCorruptException($"invalid seSparse grain directory entry 0x{entry:x16}", "grain directory", -1, File.Path);
        }

        long offset = (_tablesOffsetSectors + ((long)(entry & 0xffffffff) * (long)GrainTableSectors)) * VmdkLimits.SectorBytes;
        const int tableBytes = EntriesPerTable * sizeof(ulong);
        if (offset + tableBytes > File.Length)
        {
            throw new ImageCorruptException($"seSparse grain table {gdIndex} lies past the end of the file", "grain directory", -1, File.Path);
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_tables[gdIndex] is { } loaded)
            {
                return loaded;
            }

            byte[] raw = new byte[tableBytes];
            await File.ReadZeroFilledAsync(offset, raw, cancellationToken).ConfigureAwait(false);
            table = new ulong[EntriesPerTable];
            for (int i = 0; i < table.Length; i++)
            {
                table[i] = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(i * sizeof(ulong)));
            }

            Volatile.Write(ref _tables[gdIndex], table);
            _cachedTables.Enqueue(gdIndex);
            while (_cachedTables.Count > VmdkLimits.MaxGrainTableCacheBytes / tableBytes)
            {
                Volatile.Write(ref _tables[_cachedTables.Dequeue()], null);
            }

            return table;
        }
        finally
        {
            _lock.Release();
        }
    }
}

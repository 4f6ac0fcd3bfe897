using System.Buffers;
using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vmdk;

/// <summary>
/// A hosted sparse extent (monolithicSparse, twoGbMaxExtentSparse pieces, streamOptimized): a grain directory of
/// grain tables whose entries are the sector of each grain, 0 for unallocated and, with the zeroed-grain flag,
/// 1 for "reads as zeros" (VMware "Virtual Disk Format 1.1", "Grain Directories and Grain Tables").
/// Grain tables are loaded on first use and kept; new grains are appended at the end of the file, data first,
/// then the grain table entry, so a crash leaves at worst a leaked grain.
/// </summary>
internal sealed partial class VmdkSparseExtent : VmdkExtent
{
    private const uint ZeroedGrainEntry = 1;

    private readonly VmdkSparseHeader _header;
    private readonly int _gtesPerGt;
    private readonly int _gtBytes;
    private readonly uint[] _gd;
    private readonly uint[]? _rgd;
    private readonly uint[]?[] _tables;
    private readonly SemaphoreSlim _lock = new(1, 1);

    // Tables loaded from the file, oldest first; beyond the cache budget the oldest are dropped (under _lock).
    private readonly Queue<int> _cachedTables = new();
    private int _maxCachedTables = int.MaxValue;
    private readonly bool _readOnly;
    private long _nextGrainSector;

    private VmdkSparseExtent(IHostFile file, long startBytes, string type, bool ownsFile, VmdkSparseHeader header, uint[] gd, uint[]? rgd, bool readOnly)
        : base(file, startBytes, (long)header.CapacitySectors * VmdkLimits.SectorBytes, type, ownsFile)
    {
        _header = header;
        _gtesPerGt = (int)header.GtesPerGt;
        _gtBytes = _gtesPerGt * sizeof(uint);
        _gd = gd;
        _rgd = rgd;
        _tables = new uint[]?[gd.Length];
        _readOnly = readOnly;
        GrainBytes = (long)header.GrainSectors * VmdkLimits.SectorBytes;
        long fileSectors = (file.Length + VmdkLimits.SectorBytes - 1) / VmdkLimits.SectorBytes;
        _nextGrainSector = RoundUp(fileSectors, (long)header.GrainSectors);
    }

    public VmdkSparseHeader Header => _header;

    public override bool IsFlat => false;

    public override long GrainBytes { get; }

    public override bool IsCompressed => _header.IsCompressed;

    /// <summary>Grains per grain table times the grain size: what one grain directory entry covers.</summary>
    private long GtCoverageBytes => GrainBytes * _gtesPerGt;

    /// <summary>Opens and validates a sparse extent; the header may point at a footer (streamOptimized).</summary>
    /// <param name="maxCachedTables">Grain tables kept in memory; 0 for the default budget (<see cref="VmdkLimits.MaxGrainTableCacheBytes"/>).</param>
    public static async ValueTask<VmdkSparseExtent> OpenAsync(IHostFile file, long startBytes, string type, bool ownsFile, bool readOnly, CancellationToken cancellationToken, int maxCachedTables = 0)
    {
        long fileLength = file.Length;
        byte[] sector = new byte[VmdkSparseHeader.SizeBytes];
        await file.ReadZeroFilledAsync(0, sector, cancellationToken).ConfigureAwait(false);
        bool cowd = VmdkSparseHeader.HasCowdMagic(sector);
        uint cowdGdEntries = 0;
        VmdkSparseHeader header = cowd ? VmdkSparseHeader.ReadCowd(sector, file.Path, out cowdGdEntries) : VmdkSparseHeader.Read(sector, file.Path);
        bool streamLayout = header.GdOffsetSectors == VmdkSparseHeader.GdAtEnd;
        if (streamLayout)
        {
            header = await ReadFooterAsync(file, fileLength, cancellationToken).ConfigureAwait(false);
        }

        if (cowd && !readOnly)
        {
            throw new UnsupportedFeatureException("VMDK3 / vmfsSparse (COWD) extents can only be opened read-only", file.Path);
        }

        Validate(header, fileLength, readOnly, file.Path, cowd);
        long coverageSectors = (long)header.GrainSectors * header.GtesPerGt;
        long gdEntries = ((long)header.CapacitySectors + coverageSectors - 1) / coverageSectors;
        if (cowd)
        {
            // COWD gives the directory size; it must cover the capacity (QEMU fails the read that falls outside).
            if (cowdGdEntries < gdEntries)
            {
                throw new ImageFormatException($"the COWD grain directory of {cowdGdEntries} entries does not cover the capacity", file.Path);
            }

            gdEntries = cowdGdEntries;
        }

        if (gdEntries > VmdkLimits.MaxGrainDirectoryEntries)
        {
            throw new ImageFormatException($"grain directory of {gdEntries} entries is larger than the limit of {VmdkLimits.MaxGrainDirectoryEntries}", file.Path);
        }

        uint[] gd = await ReadDirectoryAsync(file, header.GdOffsetSectors, (int)gdEntries, fileLength, "grain directory", cancellationToken).ConfigureAwait(false);
        uint[]? rgd = null;
        if (header.HasRedundantGrainTable && header.RgdOffsetSectors != 0 && !header.IsCompressed)
        {
            rgd = await ReadDirectoryAsync(file, header.RgdOffsetSectors, (int)gdEntries, fileLength, "redundant grain directory", cancellationToken).ConfigureAwait(false);
        }

        var extent = new VmdkSparseExtent(file, startBytes, type, ownsFile, header, gd, rgd, readOnly);
        extent._maxCachedTables = maxCachedTables > 0 ? maxCachedTables : Math.Max(1, VmdkLimits.MaxGrainTableCacheBytes / extent._gtBytes);
        if (streamLayout && !readOnly && header.IsCompressed && header.HasMarkers && gd.All(e => e == 0))
        {
            // An empty streamOptimized image (as create makes it) is filled by appending grain markers.
            extent.BeginStream();
        }

        return extent;
    }

    public override async ValueTask<VmdkRun> MapAsync(long offsetBytes, long maxLengthBytes, CancellationToken cancellationToken)
    {
        long grain = offsetBytes / GrainBytes;
        long inGrain = offsetBytes % GrainBytes;
        (VmdkRunKind kind, long sector) = await EntryAsync(grain, cancellationToken).ConfigureAwait(false);
        long length = Math.Min(maxLengthBytes, GrainBytes - inGrain);
        long host = kind == VmdkRunKind.Data ? (sector * VmdkLimits.SectorBytes) + (IsCompressed ? 0 : inGrain) : -1;
        if (kind == VmdkRunKind.Data && IsCompressed)
        {
            // A compressed grain is read whole; each one is its own run.
            return new VmdkRun(kind, length, host, true);
        }

        long nextSector = sector + (long)_header.GrainSectors;
        while (length < maxLengthBytes && offsetBytes + length < SizeBytes)
        {
            (VmdkRunKind nextKind, long s) = await EntryAsync(++grain, cancellationToken).ConfigureAwait(false);
            if (nextKind != kind || (kind == VmdkRunKind.Data && s != nextSector))
            {
                break;
            }

            nextSector = s + (long)_header.GrainSectors;
            length = Math.Min(maxLengthBytes, length + GrainBytes);
        }

        return new VmdkRun(kind, Math.Min(length, SizeBytes - offsetBytes), host, false);
    }

    public override async ValueTask ReadDataAsync(long offsetBytes, Memory<byte> buffer, VmdkRun run, CancellationToken cancellationToken)
    {
        if (!run.Compressed)
        {
            await File.ReadZeroFilledAsync(run.HostOffsetBytes, buffer, cancellationToken).ConfigureAwait(false);
            return;
        }

        byte[] grain = ArrayPool<byte>.Shared.Rent((int)GrainBytes);
        try
        {
            await ReadCompressedGrainAsync(run.HostOffsetBytes, grain.AsMemory(0, (int)GrainBytes), cancellationToken).ConfigureAwait(false);
            grain.AsMemory((int)(offsetBytes % GrainBytes), buffer.Length).CopyTo(buffer);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(grain);
        }
    }

    public override async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, BackingReader backing, CancellationToken cancellationToken)
    {
        ThrowIfReadOnly();
        if (IsCompressed)
        {
            await StreamWriteAsync(offsetBytes, data, cancellationToken).ConfigureAwait(false);
            return;
        }

        int done = 0;
        while (done < data.Length)
        {
            long position = offsetBytes + done;
            long grain = position / GrainBytes;
            int inGrain = (int)(position % GrainBytes);
            int piece = (int)Math.Min(data.Length - done, GrainBytes - inGrain);
            (VmdkRunKind kind, long sector) = await EntryAsync(grain, cancellationToken).ConfigureAwait(false);
            if (kind == VmdkRunKind.Data)
            {
                await File.WriteAsync((sector * VmdkLimits.SectorBytes) + inGrain, data.Slice(done, piece), cancellationToken).ConfigureAwait(false);
                done += piece;
                continue;
            }

            done += await AllocateAndWriteAsync(position, data[done..], backing, cancellationToken).ConfigureAwait(false);
        }
    }

    public override async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, bool hasBacking, BackingReader backing, CancellationToken cancellationToken)
    {
        ThrowIfReadOnly();
        long end = offsetBytes + lengthBytes;
        byte[]? zeros = null;
        try
        {
            for (long position = offsetBytes; position < end;)
            {
                long grain = position / GrainBytes;
                long inGrain = position % GrainBytes;
                long piece = Math.Min(end - position, GrainBytes - inGrain);
                bool wholeGrain = inGrain == 0 && (piece == GrainBytes || position + piece == SizeBytes);
                (VmdkRunKind kind, _) = await EntryAsync(grain, cancellationToken).ConfigureAwait(false);
                bool alreadyZero = kind == VmdkRunKind.Zero || (kind == VmdkRunKind.Unallocated && !hasBacking);
                if (!alreadyZero)
                {
                    if (wholeGrain && _header.HasZeroedGrain && !IsCompressed)
                    {
                        // The zeroed-grain entry (GTE = 1) says "zeros" without writing any data.
                        await SetEntriesAsync(grain, [ZeroedGrainEntry], cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        zeros ??= new byte[GrainBytes];
                        await WriteAsync(position, zeros.AsMemory(0, (int)piece), backing, cancellationToken).ConfigureAwait(false);
                    }
                }

                position += piece;
            }
        }
        finally
        {
            zeros = null;
        }
    }

    public override async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        await FinishStreamAsync(cancellationToken).ConfigureAwait(false);
        await File.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>QEMU's check: every allocated grain must start inside the file; grain tables too.</summary>
    public override async ValueTask CheckAsync(List<CheckFinding> findings, CancellationToken cancellationToken)
    {
        long fileLength = File.Length;
        for (int gdIndex = 0; gdIndex < _gd.Length; gdIndex++)
        {
            uint[]? table;
            try
            {
                table = await GetTableAsync(gdIndex, cancellationToken).ConfigureAwait(false);
            }
            catch (ImageCorruptException e)
            {
                findings.Add(new CheckFinding(CheckSeverity.Corruption, e.Structure, e.OffsetBytes, e.Message, false));
                continue;
            }

            if (table is null)
            {
                continue;
            }

            for (int i = 0; i < table.Length; i++)
            {
                uint entry = table[i];
                if (entry == 0 || (entry == ZeroedGrainEntry && _header.HasZeroedGrain))
                {
                    continue;
                }

                long grain = ((long)gdIndex * _gtesPerGt) + i;
                if (grain * GrainBytes >= SizeBytes)
                {
                    break;
                }

                if ((long)entry * VmdkLimits.SectorBytes >= fileLength)
                {
                    findings.Add(new CheckFinding(
                        CheckSeverity.Corruption,
                        "grain table",
                        ((long)_gd[gdIndex] * VmdkLimits.SectorBytes) + (i * sizeof(uint)),
                        $"grain offset for sector {(StartBytes + (grain * GrainBytes)) / VmdkLimits.SectorBytes} points after EOF",
                        false));
                }
            }
        }
    }

    public override void Dispose()
    {
        _lock.Dispose();
        base.Dispose();
    }

    /// <summary>The grain table entry for a grain: unallocated, zeroed, or the sector where its data (or grain marker) starts.</summary>
    private async ValueTask<(VmdkRunKind Kind, long Sector)> EntryAsync(long grain, CancellationToken cancellationToken)
    {
        uint[]? table = await GetTableAsync((int)(grain / _gtesPerGt), cancellationToken).ConfigureAwait(false);
        uint entry = table is null ? 0 : Volatile.Read(ref table[grain % _gtesPerGt]);
        return entry switch
        {
            0 => (VmdkRunKind.Unallocated, 0),
            ZeroedGrainEntry when _header.HasZeroedGrain => (VmdkRunKind.Zero, 0),
            _ => (VmdkRunKind.Data, entry),
        };
    }

    private async ValueTask<uint[]?> GetTableAsync(int gdIndex, CancellationToken cancellationToken)
    {
        uint[]? table = Volatile.Read(ref _tables[gdIndex]);
        if (table is not null || _gd[gdIndex] == 0)
        {
            return table;
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return _tables[gdIndex] ?? await LoadTableAsync(gdIndex, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    private async ValueTask<uint[]?> LoadTableAsync(int gdIndex, CancellationToken cancellationToken)
    {
        long offset = (long)_gd[gdIndex] * VmdkLimits.SectorBytes;
        if (offset == 0)
        {
            return null;
        }

        if (offset + _gtBytes > File.Length)
        {
            throw new ImageCorruptException($"grain table {gdIndex} at offset {offset} lies past the end of the file", "grain directory", ((long)_header.GdOffsetSectors * VmdkLimits.SectorBytes) + (gdIndex * sizeof(uint)), File.Path);
        }

        byte[] bytes = new byte[_gtBytes];
        await File.ReadZeroFilledAsync(offset, bytes, cancellationToken).ConfigureAwait(false);
        uint[] table = new uint[_gtesPerGt];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * sizeof(uint)));
        }

        Volatile.Write(ref _tables[gdIndex], table);
        RememberTable(gdIndex);
        return table;
    }

    /// <summary>Keeps the table cache within its budget. Tables on disk are always current (writes go through), so a
    /// dropped table is simply read again; tables of a stream being written are never in the cache queue.</summary>
    private void RememberTable(int gdIndex)
    {
        _cachedTables.Enqueue(gdIndex);
        while (_cachedTables.Count > _maxCachedTables)
        {
            Volatile.Write(ref _tables[_cachedTables.Dequeue()], null);
        }
    }

    /// <summary>Allocates the grains a write reaches that have no data yet (one contiguous run), writes them whole
    /// (filling partial grains from the backing file or with zeros) and then points the grain tables at them.</summary>
    private async ValueTask<int> AllocateAndWriteAsync(long position, ReadOnlyMemory<byte> data, BackingReader backing, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long firstGrain = position / GrainBytes;
            int inGrain = (int)(position % GrainBytes);
            (VmdkRunKind firstKind, long firstSector) = await EntryUnlockedAsync(firstGrain, cancellationToken).ConfigureAwait(false);
            if (firstKind == VmdkRunKind.Data)
            {
                // Another writer allocated it meanwhile.
                int piece = (int)Math.Min(data.Length, GrainBytes - inGrain);
                await File.WriteAsync((firstSector * VmdkLimits.SectorBytes) + inGrain, data[..piece], cancellationToken).ConfigureAwait(false);
                return piece;
            }

            // Extend the run over following grains the data reaches that also need allocating.
            var zeroed = new List<bool> { firstKind == VmdkRunKind.Zero };
            long covered = Math.Min(data.Length, GrainBytes - inGrain);
            while (covered < data.Length && zeroed.Count < 4096)
            {
                (VmdkRunKind kind, _) = await EntryUnlockedAsync(firstGrain + zeroed.Count, cancellationToken).ConfigureAwait(false);
                if (kind == VmdkRunKind.Data)
                {
                    break;
                }

                zeroed.Add(kind == VmdkRunKind.Zero);
                covered = Math.Min(data.Length, covered + GrainBytes);
            }

            int grains = zeroed.Count;
            long hostSector = _nextGrainSector;
            if (hostSector + (grains * (long)_header.GrainSectors) > VmdkLimits.MaxSparseFileSectors)
            {
                throw new UnsupportedFeatureException("the sparse extent is full: grain offsets would exceed 2 TiB", File.Path);
            }

            _nextGrainSector += grains * (long)_header.GrainSectors;
            long host = hostSector * VmdkLimits.SectorBytes;
            long end = inGrain + covered;
            if (inGrain > 0)
            {
                await FillAsync(host, firstGrain * GrainBytes, inGrain, zeroed[0], backing, cancellationToken).ConfigureAwait(false);
            }

            await File.WriteAsync(host + inGrain, data[..(int)covered], cancellationToken).ConfigureAwait(false);
            long runBytes = grains * GrainBytes;
            if (end < runBytes)
            {
                await FillAsync(host + end, (firstGrain * GrainBytes) + end, (int)(runBytes - end), zeroed[^1], backing, cancellationToken).ConfigureAwait(false);
            }

            uint[] entries = new uint[grains];
            for (int i = 0; i < grains; i++)
            {
                entries[i] = (uint)(hostSector + (i * (long)_header.GrainSectors));
            }

            await SetEntriesUnlockedAsync(firstGrain, entries, cancellationToken).ConfigureAwait(false);
            return (int)covered;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Fills part of a newly allocated grain with what the disk read there before: the backing file's data, or zeros.</summary>
    private async ValueTask FillAsync(long host, long virtualInExtent, int length, bool zeroed, BackingReader backing, CancellationToken cancellationToken)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            Memory<byte> fill = buffer.AsMemory(0, length);
            long validLength = Math.Max(0, Math.Min(length, SizeBytes - virtualInExtent));
            fill.Span.Clear();
            if (!zeroed && validLength > 0)
            {
                await backing(StartBytes + virtualInExtent, fill[..(int)validLength], cancellationToken).ConfigureAwait(false);
            }

            await File.WriteAsync(host, fill, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async ValueTask<(VmdkRunKind Kind, long Sector)> EntryUnlockedAsync(long grain, CancellationToken cancellationToken)
    {
        int gdIndex = (int)(grain / _gtesPerGt);
        uint[]? table = _tables[gdIndex] ?? await LoadTableAsync(gdIndex, cancellationToken).ConfigureAwait(false);
        uint entry = table is null ? 0 : table[grain % _gtesPerGt];
        return entry switch
        {
            0 => (VmdkRunKind.Unallocated, 0),
            ZeroedGrainEntry when _header.HasZeroedGrain => (VmdkRunKind.Zero, 0),
            _ => (VmdkRunKind.Data, entry),
        };
    }

    private async ValueTask SetEntriesAsync(long firstGrain, uint[] entries, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await SetEntriesUnlockedAsync(firstGrain, entries, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Sets grain table entries in memory and on disk, in the grain table and its redundant copy,
    /// allocating a grain table where the directory has none.</summary>
    private async ValueTask SetEntriesUnlockedAsync(long firstGrain, uint[] entries, CancellationToken cancellationToken)
    {
        int done = 0;
        while (done < entries.Length)
        {
            long grain = firstGrain + done;
            int gdIndex = (int)(grain / _gtesPerGt);
            int index = (int)(grain % _gtesPerGt);
            int count = Math.Min(entries.Length - done, _gtesPerGt - index);
            uint[] table = _tables[gdIndex] ?? await LoadTableAsync(gdIndex, cancellationToken).ConfigureAwait(false)
                ?? await AllocateTableAsync(gdIndex, cancellationToken).ConfigureAwait(false);
            byte[] bytes = new byte[count * sizeof(uint)];
            for (int i = 0; i < count; i++)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i * sizeof(uint)), entries[done + i]);
            }

            await File.WriteAsync(((long)_gd[gdIndex] * VmdkLimits.SectorBytes) + (index * sizeof(uint)), bytes, cancellationToken).ConfigureAwait(false);
            if (_rgd is not null && _rgd[gdIndex] != 0)
            {
                await File.WriteAsync(((long)_rgd[gdIndex] * VmdkLimits.SectorBytes) + (index * sizeof(uint)), bytes, cancellationToken).ConfigureAwait(false);
            }

            for (int i = 0; i < count; i++)
            {
                Volatile.Write(ref table[index + i], entries[done + i]);
            }

            done += count;
        }
    }

    /// <summary>A grain directory entry of 0 has no grain table: make one (and its redundant copy) at the end of the file.</summary>
    private async ValueTask<uint[]> AllocateTableAsync(int gdIndex, CancellationToken cancellationToken)
    {
        long tableSectors = RoundUp(_gtBytes, VmdkLimits.SectorBytes) / VmdkLimits.SectorBytes;
        byte[] zeros = new byte[tableSectors * VmdkLimits.SectorBytes];
        byte[] entry = new byte[sizeof(uint)];
        foreach ((uint[] directory, ulong directorySector) in _rgd is null
            ? [(_gd, _header.GdOffsetSectors)]
            : new[] { (_gd, _header.GdOffsetSectors), (_rgd, _header.RgdOffsetSectors) })
        {
            long sector = _nextGrainSector;
            _nextGrainSector += RoundUp(tableSectors, (long)_header.GrainSectors);
            await File.WriteAsync(sector * VmdkLimits.SectorBytes, zeros, cancellationToken).ConfigureAwait(false);
            BinaryPrimitives.WriteUInt32LittleEndian(entry, (uint)sector);
            await File.WriteAsync(((long)directorySector * VmdkLimits.SectorBytes) + (gdIndex * sizeof(uint)), entry, cancellationToken).ConfigureAwait(false);
            directory[gdIndex] = (uint)sector;
        }

        uint[] table = new uint[_gtesPerGt];
        Volatile.Write(ref _tables[gdIndex], table);
        return table;
    }

    private async ValueTask ReadCompressedGrainAsync(long markerOffset, Memory<byte> grain, CancellationToken cancellationToken)
    {
        int maxCompressed = VmdkDeflate.MaxCompressedBytes((int)GrainBytes) * 2;
        int dataOffset = _header.HasMarkers ? VmdkMarker.GrainHeaderBytes : 0;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(maxCompressed + dataOffset);
        try
        {
            int length;
            if (_header.HasMarkers)
            {
                await File.ReadZeroFilledAsync(markerOffset, buffer.AsMemory(0, VmdkMarker.GrainHeaderBytes), cancellationToken).ConfigureAwait(false);
                length = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(VmdkMarker.SizeOffset)), int.MaxValue);
                if (length == 0 || length > maxCompressed)
                {
                    throw new ImageCorruptException($"compressed grain at offset {markerOffset} has a bad size ({length} bytes)", "grain marker", markerOffset, File.Path);
                }

                await File.ReadZeroFilledAsync(markerOffset + dataOffset, buffer.AsMemory(dataOffset, length), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                length = maxCompressed;
                await File.ReadZeroFilledAsync(markerOffset, buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            }

            int produced = VmdkDeflate.Decompress(buffer, dataOffset, length, grain.Span);
            if (produced < 0)
            {
                throw new ImageCorruptException($"compressed grain at offset {markerOffset} does not inflate", "compressed grain", markerOffset, File.Path);
            }

            // The last grain of a disk may be stored shorter than a whole grain.
            grain.Span[produced..].Clear();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void ThrowIfReadOnly()
    {
        if (_readOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", File.Path);
        }
    }

    private static void Validate(VmdkSparseHeader header, long fileLength, bool readOnly, string path, bool cowd)
    {
        if (header.Version > 3 && !cowd)
        {
            throw new UnsupportedFeatureException($"unsupported VMDK version {header.Version}", path);
        }

        if (header.Version == 3 && !readOnly && !header.IsCompressed)
        {
            // VMware KB 2064959: version 3 adds changed block tracking that a writer would have to keep.
            throw new UnsupportedFeatureException("VMDK version 3 must be opened read-only", path);
        }

        if (header.GtesPerGt is 0 || (header.GtesPerGt > VmdkLimits.MaxGtesPerGt && !cowd))
        {
            throw new ImageFormatException($"invalid number of grain table entries per grain table ({header.GtesPerGt})", path);
        }

        if (header.GrainSectors is 0 or > (ulong)VmdkLimits.MaxGrainSectors)
        {
            throw new ImageFormatException($"invalid grain size ({header.GrainSectors} sectors)", path);
        }

        if (header.CapacitySectors > (ulong)VmdkLimits.MaxCapacitySectors)
        {
            throw new ImageFormatException($"capacity of {header.CapacitySectors} sectors is larger than the limit of {VmdkLimits.MaxCapacitySectors}", path);
        }

        if (header.CompressAlgorithm > VmdkSparseHeader.CompressionDeflate)
        {
            throw new UnsupportedFeatureException($"unsupported compression algorithm {header.CompressAlgorithm}", path);
        }

        if (header.OverheadSectors > (ulong)((fileLength + VmdkLimits.SectorBytes - 1) / VmdkLimits.SectorBytes))
        {
            throw new ImageCorruptException($"file truncated, expecting at least {header.OverheadSectors * VmdkLimits.SectorBytes} bytes", "header", VmdkSparseHeader.OverheadOffset, path);
        }
    }

    private static async ValueTask<VmdkSparseHeader> ReadFooterAsync(IHostFile file, long fileLength, CancellationToken cancellationToken)
    {
        // Footer marker, footer (a copy of the header with the real gdOffset), end-of-stream marker: the last three sectors.
        const int FooterBytes = 3 * VmdkLimits.SectorBytes;
        if (fileLength < FooterBytes + VmdkSparseHeader.SizeBytes)
        {
            throw new ImageFormatException("invalid footer: the file is too short for a streamOptimized footer", file.Path);
        }

        byte[] footer = new byte[FooterBytes];
        await file.ReadZeroFilledAsync((fileLength & ~(long)(VmdkLimits.SectorBytes - 1)) - FooterBytes, footer, cancellationToken).ConfigureAwait(false);
        ReadOnlySpan<byte> span = footer;
        if (!VmdkMarker.IsMetadata(span, VmdkMarker.Footer, out _)
            || !VmdkSparseHeader.HasMagic(span[VmdkLimits.SectorBytes..])
            || !VmdkMarker.IsMetadata(span[(2 * VmdkLimits.SectorBytes)..], VmdkMarker.EndOfStream, out ulong eosValue)
            || eosValue != 0)
        {
            throw new ImageFormatException("invalid footer", file.Path);
        }

        VmdkSparseHeader header = VmdkSparseHeader.Read(span.Slice(VmdkLimits.SectorBytes, VmdkSparseHeader.SizeBytes), file.Path);
        if (header.GdOffsetSectors == VmdkSparseHeader.GdAtEnd)
        {
            throw new ImageFormatException("invalid footer: it does not give the grain directory offset", file.Path);
        }

        return header;
    }

    private static async ValueTask<uint[]> ReadDirectoryAsync(IHostFile file, ulong sector, int entries, long fileLength, string structure, CancellationToken cancellationToken)
    {
        long bytes = (long)entries * sizeof(uint);
        if (sector > (ulong)(fileLength / VmdkLimits.SectorBytes) || ((long)sector * VmdkLimits.SectorBytes) + bytes > fileLength)
        {
            throw new ImageCorruptException($"{structure} at sector {sector} lies past the end of the file", structure, (long)Math.Min(sector, long.MaxValue / VmdkLimits.SectorBytes) * VmdkLimits.SectorBytes, file.Path);
        }

        byte[] raw = new byte[bytes];
        await file.ReadZeroFilledAsync((long)sector * VmdkLimits.SectorBytes, raw, cancellationToken).ConfigureAwait(false);
        uint[] directory = new uint[entries];
        for (int i = 0; i < entries; i++)
        {
            directory[i] = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(i * sizeof(uint)));
        }

        return directory;
    }

    private static long RoundUp(long value, long unit) => (value + unit - 1) / unit * unit;
}

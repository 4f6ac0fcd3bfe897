using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// qemu-img check for qcow2 (QEMU's qcow2_check_refcounts): counts the references every structure
/// makes to each host cluster, compares them with the stored refcounts, checks OFLAG_COPIED and
/// entry alignment, and repairs leaks (-r leaks) or everything it can (-r all, rebuilding the
/// refcount structure when stored refcounts are too low, so that no live cluster is handed out).
/// With an external data file, data clusters live there and are not refcounted (their refcount is
/// implicitly one), so only the metadata in the image file is counted.
/// </summary>
internal sealed partial class Qcow2Check(Qcow2Image image)
{
    private readonly List<CheckFinding> _findings = [];
    private uint[] _references = [];
    private byte[]? _scratch;
    private long _clusters;
    private long _fileLength;
    private long _corruptions;
    private long _leaks;
    private long _checkErrors;
    private long _allocated;
    private long _fragmented;
    private long _compressed;
    private long _nextContiguous;
    private readonly List<long> _refcountStructure = [];

    private IHostFile File => image.HostFile;

    private long ClusterSize => image.ClusterSize;

    /// <summary>One cluster, reused for every L2 table and refcount block the check reads.</summary>
    private byte[] Scratch => _scratch ??= new byte[ClusterSize];

    public async ValueTask<CheckReport> RunAsync(CheckRepair repair, CancellationToken cancellationToken)
    {
        await image.MetadataLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await RunLockedAsync(repair, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            image.MetadataLock.Release();
        }
    }

    /// <summary>
    /// The check in passes, as QEMU's qcow2_check_refcounts: count the references every structure makes, find the
    /// refcount blocks, compare the stored refcounts with the counts, repair refcounts, then the COPIED flags.
    /// </summary>
    private async ValueTask<CheckReport> RunLockedAsync(CheckRepair repair, CancellationToken cancellationToken)
    {
        Qcow2Header header = image.Header;
        _fileLength = File.Length;
        _clusters = (_fileLength + ClusterSize - 1) / ClusterSize;
        long totalClusters = (header.SizeBytes + ClusterSize - 1) / ClusterSize;
        if (_clusters > Qcow2Limits.MaxCheckClusters)
        {
            _checkErrors++;
            _findings.Add(new CheckFinding(CheckSeverity.CheckError, "image", 0, $"the image has {_clusters} clusters; this build checks at most {Qcow2Limits.MaxCheckClusters}", false));
            return Report(totalClusters, 0);
        }

        _references = new uint[_clusters];
        await CountReferencesAsync(header, cancellationToken).ConfigureAwait(false);
        long[] blocks = FindRefcountBlocks(header);
        RefcountComparison comparison = await CompareRefcountsAsync(blocks, repair, cancellationToken).ConfigureAwait(false);
        (long leaksFixed, long corruptionsFixed) = await RepairRefcountsAsync(comparison, repair, cancellationToken).ConfigureAwait(false);

        // OFLAG_COPIED must be set exactly when the refcount is one (spec: bit 63 of L1 and L2 entries),
        // judged, as QEMU does, by the refcounts as they are after any refcount repair.
        bool fixCopied = repair.HasFlag(CheckRepair.Errors)
            || (repair.HasFlag(CheckRepair.Leaks) && _corruptions == 0 && _leaks == 0 && _checkErrors == 0);
        corruptionsFixed += await CheckCopiedFlagsAsync(fixCopied, cancellationToken).ConfigureAwait(false);

        if (repair.HasFlag(CheckRepair.Errors) && _checkErrors == 0 && corruptionsFixed == _corruptions)
        {
            await image.SetCorruptFlagAsync(false, cancellationToken).ConfigureAwait(false);
        }

        image.Refcounts.DropCache();
        image.L2Cache.Clear();
        image.Refcounts.ResetFreeHint();
        return Report(totalClusters, comparison.Highest + 1) with { LeaksFixed = leaksFixed, CorruptionsFixed = corruptionsFixed };
    }

    /// <summary>Pass 1: the references of the header, the active and the snapshots' L1/L2 tables and data, and the bitmaps.</summary>
    private async ValueTask CountReferencesAsync(Qcow2Header header, CancellationToken cancellationToken)
    {
        Reference(0, ClusterSize, "header");
        Reference(header.L1TableOffset, header.L1Size * 8L, "L1 table");
        await CheckL1Async(image.L1, active: true, cancellationToken).ConfigureAwait(false);

        (IReadOnlyList<Qcow2Snapshot> snapshots, long snapshotTableBytes) = await Qcow2Snapshots.ReadAsync(File, header, cancellationToken).ConfigureAwait(false);
        foreach (Qcow2Snapshot snapshot in snapshots)
        {
            if (snapshot.L1TableOffset + (snapshot.L1Size * 8L) > File.Length)
            {
                Corruption("snapshot", snapshot.L1TableOffset, $"snapshot {snapshot.Id} L1 table lies beyond the end of the image");
                continue;
            }

            Reference(snapshot.L1TableOffset, snapshot.L1Size * 8L, "snapshot L1 table");
            long[] l1 = await Qcow2Image.ReadL1Async(File, snapshot.L1TableOffset, snapshot.L1Size, cancellationToken).ConfigureAwait(false);
            await CheckL1Async(l1, active: false, cancellationToken).ConfigureAwait(false);
        }

        if (header.NbSnapshots > 0)
        {
            Reference(header.SnapshotsOffset, snapshotTableBytes, "snapshot table");
        }

        if (image.Header.Extensions.FirstOrDefault(e => e.Type == Qcow2HeaderExtension.Bitmaps)?.Data is { Length: >= 24 } bitmapExtension
            && image.Header.Autoclear.HasFlag(Qcow2Autoclear.Bitmaps))
        {
            Reference(BinaryPrimitives.ReadInt64BigEndian(bitmapExtension.AsSpan(16)), BinaryPrimitives.ReadInt64BigEndian(bitmapExtension.AsSpan(8)), "bitmap directory");
            foreach (Qcow2Bitmap bitmap in image.Bitmaps)
            {
                Reference(bitmap.TableOffset, bitmap.TableSize * 8L, "bitmap table");
                foreach (long cluster in await Qcow2Bitmaps.DataClustersAsync(File, bitmap, cancellationToken).ConfigureAwait(false))
                {
                    Reference(cluster, ClusterSize, "bitmap data");
                }
            }
        }
    }

    /// <summary>Pass 2: the refcount structure (and the LUKS area), which references itself; its blocks by table index (0: none).</summary>
    private long[] FindRefcountBlocks(Qcow2Header header)
    {
        // Remembered so a rebuild can leave the old structure out.
        int before = CountStructureStart();
        if (image.IsEncrypted)
        {
            Reference(image.LuksArea.OffsetBytes, image.LuksArea.LengthBytes, "encryption header");
        }

        Reference(header.RefcountTableOffset, header.RefcountTableClusters * ClusterSize, "refcount table");
        IReadOnlyList<long> table = image.Refcounts.Table;
        var blocks = new long[table.Count];
        for (int i = 0; i < table.Count; i++)
        {
            long offset = (long)((ulong)table[i] & Qcow2L2Entry.OffsetMask);
            if (offset == 0)
            {
                continue;
            }

            if ((offset & (ClusterSize - 1)) != 0)
            {
                Corruption("refcount table", header.RefcountTableOffset + (i * 8L), $"refcount block {i} is not cluster aligned; refcount table entry corrupted");
                continue;
            }

            if (offset >= File.Length)
            {
                Corruption("refcount table", header.RefcountTableOffset + (i * 8L), $"refcount block {i} is outside image");
                continue;
            }

            blocks[i] = offset;
            Reference(offset, ClusterSize, "refcount block");
        }

        RecordStructure(header, blocks, before);
        return blocks;
    }

    /// <summary>What pass 3 found: the last cluster in use, refcounts below the references, and leaked clusters.</summary>
    private sealed record RefcountComparison(long Highest, long TooLowCount, List<long> Leaked);

    /// <summary>
    /// Pass 3: stored refcounts against the counted references. Read one block at a time through the refcount
    /// cache, which the COPIED pass then reads from; memory stays at the counted references and the cache.
    /// </summary>
    private async ValueTask<RefcountComparison> CompareRefcountsAsync(long[] blocks, CheckRepair repair, CancellationToken cancellationToken)
    {
        long perBlock = image.Refcounts.EntriesPerBlock;
        byte[] block = Scratch;
        long loadedBlock = -1;
        long highest = -1;
        long tooLowCount = 0;
        var leaked = new List<long>();
        for (long i = 0; i < _clusters; i++)
        {
            ulong computed = _references[i];
            long t = i / perBlock;
            if (t != loadedBlock)
            {
                loadedBlock = t;
                if (t < blocks.Length && blocks[t] != 0)
                {
                    block = await image.Refcounts.GetBlockAsync(blocks[t], cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    block = Scratch;
                    Array.Clear(block);
                }
            }

            ulong storedRefcount = Qcow2Refcounts.ReadEntry(block, i % perBlock, image.Header.RefcountOrder);
            if (storedRefcount != 0 || computed != 0)
            {
                highest = i;
            }

            if (storedRefcount == computed)
            {
                continue;
            }

            if (storedRefcount < computed)
            {
                tooLowCount++;
                Corruption("refcount block", i * ClusterSize, $"cluster {i} refcount={storedRefcount} reference={computed}");
            }
            else
            {
                _leaks++;
                leaked.Add(i);
                _findings.Add(new CheckFinding(CheckSeverity.Leak, "refcount block", i * ClusterSize, $"cluster {i} refcount={storedRefcount} reference={computed}", repair.HasFlag(CheckRepair.Leaks)));
            }
        }

        return new RefcountComparison(highest, tooLowCount, leaked);
    }

    /// <summary>Pass 4: a rebuild for refcounts too low (or a dirty image) under -r all, else the leaks under -r leaks.</summary>
    private async ValueTask<(long LeaksFixed, long CorruptionsFixed)> RepairRefcountsAsync(RefcountComparison comparison, CheckRepair repair, CancellationToken cancellationToken)
    {
        if (repair.HasFlag(CheckRepair.Errors) && (comparison.TooLowCount > 0 || image.Header.Incompatible.HasFlag(Qcow2Incompatible.Dirty)))
        {
            await RebuildRefcountsAsync(cancellationToken).ConfigureAwait(false);
            return (_leaks, comparison.TooLowCount);
        }

        long leaksFixed = 0;
        if (repair.HasFlag(CheckRepair.Leaks) && comparison.Leaked.Count > 0)
        {
            foreach (long cluster in comparison.Leaked)
            {
                await image.Refcounts.SetRangeAsync(cluster, 1, _references[cluster], cancellationToken).ConfigureAwait(false);
                leaksFixed++;
            }
        }

        return (leaksFixed, 0);
    }

    private CheckReport Report(long totalClusters, long endClusters) => new()
    {
        Findings = _findings,
        Corruptions = _corruptions,
        Leaks = _leaks,
        CheckErrors = _checkErrors,
        ImageEndOffset = endClusters * ClusterSize,
        TotalClusters = totalClusters,
        AllocatedClusters = _allocated,
        FragmentedClusters = _fragmented,
        CompressedClusters = _compressed,
    };

    private void Corruption(string structure, long offset, string message)
    {
        _corruptions++;
        _findings.Add(new CheckFinding(CheckSeverity.Corruption, structure, offset, message, false));
    }

    /// <summary>One reference from a structure to every host cluster in [offset, offset + length).</summary>
    private void Reference(long offset, long length, string structure)
    {
        if (length <= 0)
        {
            return;
        }

        long first = offset / ClusterSize;
        long last = (offset + length - 1) / ClusterSize;
        for (long cluster = first; cluster <= last; cluster++)
        {
            if (cluster >= _clusters || cluster < 0)
            {
                Corruption(structure, offset, $"{structure} at offset {offset} reaches beyond the end of the image file");
                return;
            }

            if (_references[cluster] != uint.MaxValue)
            {
                _references[cluster]++;
            }
        }
    }

    private async ValueTask CheckL1Async(long[] l1, bool active, CancellationToken cancellationToken)
    {
        Qcow2Header header = image.Header;
        byte[] l2 = Scratch;
        for (long i = 0; i < l1.Length; i++)
        {
            ulong entry = (ulong)l1[i];
            long l2Offset = (long)(entry & Qcow2L2Entry.OffsetMask);
            if (l2Offset == 0)
            {
                continue;
            }

            long entryOffset = header.L1TableOffset + (i * 8);
            if ((entry & Qcow2L2Entry.L1ReservedMask) != 0)
            {
                Corruption("L1 table", entryOffset, $"found L1 entry with reserved bits set: {entry:x}");
            }

            if ((l2Offset & (ClusterSize - 1)) != 0)
            {
                Corruption("L1 table", entryOffset, $"l2_offset={l2Offset}: Table is not cluster aligned; L1 entry corrupted");
                continue;
            }

            if (l2Offset + ClusterSize > File.Length)
            {
                Corruption("L1 table", entryOffset, $"l2_offset={l2Offset}: L2 table lies beyond the end of the image");
                continue;
            }

            Reference(l2Offset, ClusterSize, "L2 table");
            await File.ReadZeroFilledAsync(l2Offset, l2, cancellationToken).ConfigureAwait(false);
            CheckL2(l2, l2Offset, active);
        }
    }

    private void CheckL2(byte[] l2, long l2Offset, bool active)
    {
        long entries = image.L2Entries;
        _nextContiguous = 0; // QEMU counts fragmentation within each L2 table
        for (long j = 0; j < entries; j++)
        {
            (ulong entry, ulong bitmap) = image.ReadL2Entry(l2, j);
            long entryOffset = l2Offset + (j * image.L2EntryBytes);
            if ((entry & Qcow2L2Entry.Compressed) != 0)
            {
                if ((entry & Qcow2L2Entry.Copied) != 0)
                {
                    Corruption("L2 table", entryOffset, $"coffset={Qcow2L2Entry.CompressedHostOffset(entry, image.ClusterBits)}: copied flag must never be set for compressed clusters");
                }

                if (image.ExtendedL2 && bitmap != 0)
                {
                    Corruption("L2 table", entryOffset, "compressed cluster has a non-zero subcluster allocation bitmap");
                }

                long host = Qcow2L2Entry.CompressedHostOffset(entry, image.ClusterBits);
                int span = Qcow2L2Entry.CompressedSpanBytes(entry, image.ClusterBits);
                Reference(host & ~511L, span + (host & 511), "compressed cluster");
                if (active)
                {
                    _allocated++;
                    _compressed++;
                    _fragmented++;
                }

                continue;
            }

            if (image.ExtendedL2)
            {
                if ((bitmap & (bitmap >> Qcow2L2Entry.SubclusterZeroShift) & Qcow2L2Entry.AllSubclusters) != 0)
                {
                    Corruption("L2 table", entryOffset, "subclusters are marked both allocated and zero");
                }

                if (!image.HasHostCluster(entry) && (bitmap & Qcow2L2Entry.AllSubclusters) != 0)
                {
                    Corruption("L2 table", entryOffset, "subclusters are allocated without a host cluster");
                }
            }

            if (!HasStandardHostCluster(entry, out long offset))
            {
                continue;
            }

            if ((offset & (ClusterSize - 1)) != 0)
            {
                Corruption("L2 table", entryOffset, $"offset={offset}: Cluster is not properly aligned; L2 entry corrupted");
                continue;
            }

            bool inDataFile = image.HasExternalDataFile;
            if (!inDataFile)
            {
                Reference(offset, ClusterSize, "data cluster");
            }

            if (active)
            {
                _allocated++;
                if (_nextContiguous != 0 && offset != _nextContiguous)
                {
                    _fragmented++;
                }

                _nextContiguous = offset + ClusterSize;
            }
        }
    }

    private int CountStructureStart() => _refcountStructure.Count;

    private void RecordStructure(Qcow2Header header, long[] blocks, int before)
    {
        _ = before;
        for (long c = 0; c < header.RefcountTableClusters; c++)
        {
            _refcountStructure.Add((header.RefcountTableOffset / ClusterSize) + c);
        }

        foreach (long block in blocks)
        {
            if (block != 0)
            {
                _refcountStructure.Add(block / ClusterSize);
            }
        }
    }

    /// <summary>
    /// Writes a new refcount table and blocks past the end of the file from the counted references
    /// (QEMU's rebuild_refcount_structure), then points the header at them. The old structure is left
    /// behind unreferenced, with refcount zero.
    /// </summary>
    private async ValueTask RebuildRefcountsAsync(CancellationToken cancellationToken)
    {
        foreach (long cluster in _refcountStructure)
        {
            if (cluster < _references.Length && _references[cluster] > 0)
            {
                _references[cluster]--;
            }
        }

        long perBlock = image.Refcounts.EntriesPerBlock;
        long entriesPerTableCluster = ClusterSize / 8;
        long start = _clusters;
        long blocks = 1;
        long tableClusters = 1;
        while (true)
        {
            long total = start + tableClusters + blocks;
            long neededBlocks = (total + perBlock - 1) / perBlock;
            long neededTable = (neededBlocks + entriesPerTableCluster - 1) / entriesPerTableCluster;
            if (neededBlocks == blocks && neededTable == tableClusters)
            {
                break;
            }

            blocks = neededBlocks;
            tableClusters = neededTable;
        }

        if (tableClusters * ClusterSize > Qcow2Limits.MaxRefcountTableBytes)
        {
            throw new UnsupportedFeatureException("the rebuilt refcount table would exceed its 8 MiB limit", File.Path);
        }

        long total2 = start + tableClusters + blocks;
        long tableOffset = start * ClusterSize;
        long[] table = new long[tableClusters * entriesPerTableCluster];
        byte[] block = new byte[ClusterSize];
        int order = image.Header.RefcountOrder;
        for (long b = 0; b < blocks; b++)
        {
            Array.Clear(block);
            for (long k = 0; k < perBlock; k++)
            {
                long cluster = (b * perBlock) + k;
                ulong value = cluster < _references.Length ? _references[cluster] : (cluster < total2 ? 1UL : 0UL);
                if (value > image.Refcounts.MaxRefcount)
                {
                    value = image.Refcounts.MaxRefcount;
                }

                Qcow2Refcounts.WriteEntry(block, k, order, value);
            }

            long blockOffset = (start + tableClusters + b) * ClusterSize;
            table[b] = blockOffset;
            await File.WriteAsync(blockOffset, block, cancellationToken).ConfigureAwait(false);
        }

        byte[] raw = OffsetTable.Serialize(table, TableByteOrder.BigEndian, tableClusters * ClusterSize);

        await File.WriteAsync(tableOffset, raw, cancellationToken).ConfigureAwait(false);
        image.Refcounts.Replace(tableOffset, table);
        await image.ReplaceRefcountTableAsync(tableOffset, (int)tableClusters, cancellationToken).ConfigureAwait(false);
    }
}

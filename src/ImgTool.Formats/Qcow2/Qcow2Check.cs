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
    private readonly List<CheckRepairAction> _repairs = [];
    private uint[] _references = [];

    /// <summary>Per host cluster, the first structure that references it (an index into <see cref="_structureNames"/>
    /// plus one; 0: unreferenced), so a refcount finding names the data cluster or table it is about.</summary>
    private byte[] _owners = [];
    private readonly List<string> _structureNames = [];
    private string? _failedReason;
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
            string tooMany = $"the image has {_clusters} clusters; this build checks at most {Qcow2Limits.MaxCheckClusters}";
            _findings.Add(new CheckFinding(CheckSeverity.CheckError, "image", 0, tooMany, false) { QemuLine = $"ERROR {tooMany}" });
            return Report(totalClusters, 0);
        }

        _references = new uint[_clusters];
        _owners = new byte[_clusters];
        await CountReferencesAsync(header, cancellationToken).ConfigureAwait(false);
        long[] blocks = FindRefcountBlocks(header);
        RefcountComparison comparison = await CompareRefcountsAsync(blocks, repair, cancellationToken).ConfigureAwait(false);
        (long leaksFixed, long corruptionsFixed) = await RepairRefcountsAsync(comparison, repair, cancellationToken).ConfigureAwait(false);
        if (_failedReason is not null)
        {
            image.Refcounts.DropCache();
            return Report(totalClusters, comparison.Highest + 1);
        }

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
                Corruption("snapshot L1 table", snapshot.L1TableOffset, $"snapshot {snapshot.Id} L1 table lies beyond the end of the image");
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
                Corruption("refcount block", header.RefcountTableOffset + (i * 8L), $"refcount block {i} is not cluster aligned; refcount table entry corrupted");
                continue;
            }

            if (offset >= File.Length)
            {
                Corruption("refcount block", header.RefcountTableOffset + (i * 8L), $"refcount block {i} is outside image");
                continue;
            }

            blocks[i] = offset;
            Reference(offset, ClusterSize, "refcount block");
        }

        RecordStructure(header, blocks, before);
        return blocks;
    }

    /// <summary>A cluster whose stored refcount differs from the references counted to it.</summary>
    private readonly record struct RefcountMismatch(long Cluster, ulong Stored, ulong Counted);

    /// <summary>What pass 3 found: the last cluster in use, refcounts below the references (of which
    /// <paramref name="ZeroButReferenced"/> are 0: QEMU then rebuilds the structure rather than patch it), and
    /// every mismatch in cluster order.</summary>
    private sealed record RefcountComparison(long Highest, long TooLowCount, long ZeroButReferenced, List<RefcountMismatch> Mismatches);

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
        long zeroButReferenced = 0;
        var mismatches = new List<RefcountMismatch>();
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

            // Named after what references the cluster (QEMU's compare_refcounts prints only "cluster N"): the
            // refcount block merely stores the wrong number.
            mismatches.Add(new RefcountMismatch(i, storedRefcount, computed));
            string about = OwnerOf(i);
            string message = $"cluster {i} refcount={storedRefcount} reference={computed}";
            if (storedRefcount < computed)
            {
                tooLowCount++;
                zeroButReferenced += storedRefcount == 0 ? 1 : 0;
                bool repairable = repair.HasFlag(CheckRepair.Errors);
                _corruptions++;
                _findings.Add(new CheckFinding(CheckSeverity.Corruption, about, i * ClusterSize, message, repairable) { QemuLine = $"ERROR {message}" });
            }
            else
            {
                _leaks++;
                _findings.Add(new CheckFinding(CheckSeverity.Leak, about, i * ClusterSize, message, repair.HasFlag(CheckRepair.Leaks)) { QemuLine = $"Leaked {message}" });
            }
        }

        return new RefcountComparison(highest, tooLowCount, zeroButReferenced, mismatches);
    }

    /// <summary>
    /// Pass 4, as QEMU's qcow2_check_refcounts: a referenced cluster with refcount 0 (or a dirty image) needs the
    /// refcount structure rebuilt, which -r all does and -r leaks refuses ("need to rebuild", the check fails);
    /// otherwise each mismatch the mode allows is set to the counted references, one "Repairing" line each.
    /// </summary>
    private async ValueTask<(long LeaksFixed, long CorruptionsFixed)> RepairRefcountsAsync(RefcountComparison comparison, CheckRepair repair, CancellationToken cancellationToken)
    {
        if (repair == CheckRepair.None)
        {
            return (0, 0);
        }

        bool dirty = image.Header.Incompatible.HasFlag(Qcow2Incompatible.Dirty);
        if (repair.HasFlag(CheckRepair.Errors) && (comparison.ZeroButReferenced > 0 || dirty))
        {
            Repaired("refcount table", image.Header.RefcountTableOffset, "Rebuilding refcount structure");
            await RebuildRefcountsAsync(cancellationToken).ConfigureAwait(false);
            return (_leaks, comparison.TooLowCount);
        }

        if (comparison.ZeroButReferenced > 0)
        {
            // QEMU: "ERROR need to rebuild refcount structures", a check error, and the check fails (-EIO).
            _checkErrors++;
            const string needRebuild = "need to rebuild refcount structures";
            _findings.Add(new CheckFinding(CheckSeverity.CheckError, "refcount table", image.Header.RefcountTableOffset, needRebuild, false) { QemuLine = $"ERROR {needRebuild}" });
            _failedReason = "Input/output error (the refcount structure must be rebuilt, which only -r all does)";
            return (0, 0);
        }

        long leaksFixed = 0;
        long corruptionsFixed = 0;
        foreach (RefcountMismatch m in comparison.Mismatches)
        {
            bool leak = m.Stored > m.Counted;
            if (!repair.HasFlag(leak ? CheckRepair.Leaks : CheckRepair.Errors))
            {
                string message = $"cluster {m.Cluster} refcount={m.Stored} reference={m.Counted}";
                _findings.Add(new CheckFinding(leak ? CheckSeverity.Leak : CheckSeverity.Corruption, OwnerOf(m.Cluster), m.Cluster * ClusterSize, message, false)
                {
                    QemuLine = $"{(leak ? "Leaked" : "ERROR")} {message}",
                    Restated = true,
                });
                continue;
            }

            await image.Refcounts.SetRangeAsync(m.Cluster, 1, m.Counted, cancellationToken).ConfigureAwait(false);
            Repaired(OwnerOf(m.Cluster), m.Cluster * ClusterSize, $"Repairing cluster {m.Cluster} refcount={m.Stored} reference={m.Counted}");
            if (leak)
            {
                leaksFixed++;
            }
            else
            {
                corruptionsFixed++;
            }
        }

        return (leaksFixed, corruptionsFixed);
    }

    /// <summary>Records a change the repair made, after the findings made so far.</summary>
    private void Repaired(string structure, long offset, string line) =>
        _repairs.Add(new CheckRepairAction(structure, offset, line, _findings.Count));

    /// <summary>What references a cluster, for the finding's structure ("unreferenced cluster" for a leak).</summary>
    private string OwnerOf(long cluster) =>
        cluster < _owners.Length && _owners[cluster] != 0 ? _structureNames[_owners[cluster] - 1] : "unreferenced cluster";

    private CheckReport Report(long totalClusters, long endClusters) => new()
    {
        Findings = _findings,
        Repairs = _repairs,
        FailedReason = _failedReason,
        Corruptions = _corruptions,
        Leaks = _leaks,
        CheckErrors = _checkErrors,
        ImageEndOffset = endClusters * ClusterSize,
        TotalClusters = totalClusters,
        AllocatedClusters = _allocated,
        FragmentedClusters = _fragmented,
        CompressedClusters = _compressed,
    };

    /// <param name="qemuLine">qemu-img's line for it; by default its usual "ERROR " and the message.</param>
    private void Corruption(string structure, long offset, string message, string? qemuLine = null)
    {
        _corruptions++;
        _findings.Add(new CheckFinding(CheckSeverity.Corruption, structure, offset, message, false) { QemuLine = qemuLine ?? $"ERROR {message}" });
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
        int owner = OwnerIndex(structure);
        for (long cluster = first; cluster <= last; cluster++)
        {
            if (cluster >= _clusters || cluster < 0)
            {
                // QEMU's qcow2_inc_refcounts_imrt words it so, in hex.
                Corruption(structure, offset, $"{structure} at offset {offset} reaches beyond the end of the image file",
                    $"ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x{offset:x} size 0x{length:x}");
                return;
            }

            if (_references[cluster] != uint.MaxValue)
            {
                _references[cluster]++;
            }

            if (_owners[cluster] == 0)
            {
                _owners[cluster] = (byte)owner;
            }
        }
    }

    /// <summary>The owner code of a structure name (a handful of names, so a list is enough).</summary>
    private int OwnerIndex(string structure)
    {
        int index = _structureNames.IndexOf(structure);
        if (index < 0)
        {
            _structureNames.Add(structure);
            index = _structureNames.Count - 1;
        }

        return index + 1;
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
                Corruption("L1 table", entryOffset, $"l2_offset={l2Offset:x}: Table is not cluster aligned; L1 entry corrupted");
                continue;
            }

            if (l2Offset + ClusterSize > File.Length)
            {
                Corruption("L1 table", entryOffset, $"l2_offset={l2Offset:x}: L2 table lies beyond the end of the image");
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
                    string copiedOnCompressed = $"coffset=0x{Qcow2L2Entry.CompressedHostOffset(entry, image.ClusterBits):x}: copied flag must never be set for compressed clusters";
                    Corruption("L2 table", entryOffset, copiedOnCompressed, $"ERROR: {copiedOnCompressed}");
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
                // As QEMU's check_refcounts_l2, which still counts the clusters the unaligned entry covers.
                Corruption("L2 table", entryOffset, $"offset={offset:x}: Data cluster is not properly aligned; L2 entry corrupted.");
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
    /// (QEMU's rebuild_refcount_structure), then points the header at them. As in QEMU, the counts still
    /// include the old structure, so it is then a leak that is repaired at once, one "Repairing" line per cluster.
    /// </summary>
    private async ValueTask RebuildRefcountsAsync(CancellationToken cancellationToken)
    {

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
        await ReleaseOldStructureAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The old refcount table and blocks, no longer referenced once the header names the new ones: their
    /// refcounts drop by one each (to zero unless something else also references the cluster), in cluster order.</summary>
    private async ValueTask ReleaseOldStructureAsync(CancellationToken cancellationToken)
    {
        foreach (IGrouping<long, long> cluster in _refcountStructure.Where(c => c < _references.Length).GroupBy(c => c).OrderBy(g => g.Key))
        {
            ulong stored = Math.Min(_references[cluster.Key], image.Refcounts.MaxRefcount);
            ulong counted = (ulong)Math.Max(0L, _references[cluster.Key] - (long)cluster.Count());
            _references[cluster.Key] = (uint)counted;
            if (stored == counted)
            {
                continue;
            }

            await image.Refcounts.SetRangeAsync(cluster.Key, 1, counted, cancellationToken).ConfigureAwait(false);
            Repaired("refcount structure", cluster.Key * ClusterSize, $"Repairing cluster {cluster.Key} refcount={stored} reference={counted}");
        }
    }
}

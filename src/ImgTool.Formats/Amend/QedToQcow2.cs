using System.Buffers.Binary;
using ImgTool.Block.Host;
using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Formats.Qcow2;
using ImgTool.Formats.Qed;

namespace ImgTool.Formats.Amend;

/// <summary>
/// QED -> qcow2 in place. qcow2's cluster size is the QED one, so every data cluster keeps its host offset; the qcow2
/// L2 tables, L1 table, refcount blocks and refcount table are appended past the end of the QED file, then the qcow2
/// header replaces the QED header in cluster 0.
/// </summary>
/// <remarks>
/// The refcounts are computed, not copied: 1 for the header cluster, every data cluster and every new table cluster;
/// 0 for the old QED tables and any QED header clusters after the first. A cluster with refcount 0 that nothing
/// references is free space to qcow2 (reused by later allocations), not a leak, so `qemu-img check` is clean.
/// </remarks>
internal static class QedToQcow2
{
    /// <summary>16-bit refcounts, qcow2's default and the only width v2 has.</summary>
    private const int RefcountOrder = 4;

    public static async ValueTask<FormatConversionResult> ConvertAsync(ConversionFile file, FormatConversionRequest request, CancellationToken cancellationToken)
    {
        string path = file.Path;
        int version = request.TargetOptions.GetString("compat") switch
        {
            null or "1.1" or "v3" => 3,
            "0.10" or "v2" => 2,
            var other => throw new InvalidOptionException($"invalid compat '{other}': use 0.10 (v2) or 1.1 (v3)", path),
        };
        foreach (KeyValuePair<string, string> option in request.TargetOptions.Values.Where(o => o.Key != "compat"))
        {
            throw new UnsupportedFeatureException($"amend option '{option.Key}' is not supported yet together with format=qcow2", path);
        }

        long fileLength = file.File.Length;
        byte[] raw = new byte[QedHeader.SizeBytes];
        await file.File.ReadZeroFilledAsync(0, raw, cancellationToken).ConfigureAwait(false);
        if (!QedHeader.HasMagic(raw))
        {
            throw new ImageFormatException("Image not in QED format", path);
        }

        QedHeader qed = QedHeader.Read(raw);
        QedGeometry geometry = QedHeaderValidation.Validate(qed, fileLength, path);
        if (qed.Has(QedFeatures.NeedCheck))
        {
            throw new UnsupportedFeatureException("cannot convert to qcow2 in place: the QED image needs a consistency check (it was not closed cleanly); run 'imgtool check -r all' first", path);
        }

        int clusterSize = geometry.ClusterSize;
        int clusterBits = geometry.ClusterBits;
        if (clusterBits > Qcow2Limits.MaxClusterBits)
        {
            throw new UnsupportedFeatureException($"the QED cluster size {clusterSize} is larger than qcow2 allows (at most {1 << Qcow2Limits.MaxClusterBits}); data clusters cannot stay in place", path);
        }

        string? backingName = null;
        if (qed.Has(QedFeatures.BackingFile))
        {
            byte[] name = new byte[qed.BackingFileNameSize];
            await file.File.ReadZeroFilledAsync(qed.BackingFileNameOffset, name, cancellationToken).ConfigureAwait(false);
            backingName = QedHeaderValidation.DecodeBackingFileName(name, path);
            if (name.Length > Qcow2Limits.MaxBackingFileNameBytes)
            {
                throw new UnsupportedFeatureException($"the backing file name is too long for qcow2 ({name.Length} bytes, at most {Qcow2Limits.MaxBackingFileNameBytes})", path);
            }
        }

        int entriesPerL2 = clusterSize / OffsetTable.EntryBytes;
        long l2Coverage = (long)entriesPerL2 * clusterSize;
        long l1Size = (geometry.ImageSizeBytes + l2Coverage - 1) / l2Coverage;
        if (l1Size * OffsetTable.EntryBytes > Qcow2Limits.MaxL1Bytes)
        {
            throw new UnsupportedFeatureException($"the virtual size needs a qcow2 L1 table larger than {Qcow2Limits.MaxL1Bytes} bytes with {clusterSize}-byte clusters", path);
        }

        // Pass 1: walk the QED tables, refusing what cannot be converted before anything is written.
        long oldClusters = (fileLength + clusterSize - 1) / clusterSize;
        var map = new HostClusterMap(oldClusters, path);
        map.Claim(0, 1, HostClusterMap.Header, "header");
        var qcow2Tables = new SortedSet<long>();
        long dataClusters = 0;
        long zeroClusters = 0;
        await foreach ((long guestCluster, long entry) in QedSource.WalkAsync(file.File, qed, geometry, cancellationToken).ConfigureAwait(false))
        {
            if (entry == QedTableEntry.Zero)
            {
                if (version == 2 && backingName is not null)
                {
                    throw new UnsupportedFeatureException($"cannot convert to qcow2 compat=0.10 in place: the image has zero clusters (guest offset {guestCluster * clusterSize}) over a backing file, which v2 cannot represent; use compat=1.1", path);
                }

                zeroClusters++;
                if (version == 2)
                {
                    // v2 has no zero flag; without a backing file an unallocated cluster reads as zeros too.
                    continue;
                }
            }
            else
            {
                map.Claim(entry / clusterSize, 1, HostClusterMap.DataOwner(guestCluster), "data cluster");
                dataClusters++;
            }

            qcow2Tables.Add(guestCluster / entriesPerL2);
        }

        // Layout past the end of the QED file: L2 tables, L1 table, refcount blocks, refcount table. The refcount
        // blocks cover every cluster up to the end, themselves and the table included: find that fixed point.
        long l1Clusters = Math.Max(1, ((l1Size * OffsetTable.EntryBytes) + clusterSize - 1) / clusterSize);
        long l2Start = oldClusters;
        long l1Cluster = l2Start + qcow2Tables.Count;
        long refcountsPerBlock = (long)clusterSize * 8 / (1 << RefcountOrder);
        long blocks = 1;
        long tableClusters = 1;
        while (true)
        {
            long total = l1Cluster + l1Clusters + blocks + tableClusters;
            long neededBlocks = (total + refcountsPerBlock - 1) / refcountsPerBlock;
            long neededTable = ((neededBlocks * OffsetTable.EntryBytes) + clusterSize - 1) / clusterSize;
            if (neededBlocks <= blocks && neededTable <= tableClusters)
            {
                break;
            }

            blocks = Math.Max(blocks, neededBlocks);
            tableClusters = Math.Max(tableClusters, neededTable);
        }

        if (tableClusters * clusterSize > Qcow2Limits.MaxRefcountTableBytes)
        {
            throw new UnsupportedFeatureException("the image file is too large for a qcow2 refcount table", path);
        }

        long blocksCluster = l1Cluster + l1Clusters;
        long tableCluster = blocksCluster + blocks;
        long end = tableCluster + tableClusters;
        map.Grow(end);
        var l2Offsets = new Dictionary<long, long>();
        long next = l2Start;
        foreach (long index in qcow2Tables)
        {
            l2Offsets[index] = next * clusterSize;
            map.Set(next++, 1, HostClusterMap.L2Owner(index));
        }

        map.Set(l1Cluster, l1Clusters, HostClusterMap.L1Table);
        map.Set(blocksCluster, blocks + tableClusters, HostClusterMap.L1Table);

        // Pass 2: the L2 tables, one at a time (the walk visits guest clusters in order), then the L1 table. Every
        // cluster has refcount 1, so every entry carries the COPIED flag (QEMU's check wants it exactly then).
        long[] l2 = new long[entriesPerL2];
        long current = -1;
        await foreach ((long guestCluster, long entry) in QedSource.WalkAsync(file.File, qed, geometry, cancellationToken).ConfigureAwait(false))
        {
            if (entry == QedTableEntry.Zero && version == 2)
            {
                continue;
            }

            long index = guestCluster / entriesPerL2;
            if (index != current)
            {
                if (current >= 0)
                {
                    await file.WriteAsync(l2Offsets[current], OffsetTable.Serialize(l2, TableByteOrder.BigEndian), cancellationToken).ConfigureAwait(false);
                    Array.Clear(l2);
                }

                current = index;
            }

            l2[guestCluster % entriesPerL2] = entry == QedTableEntry.Zero ? (long)Qcow2L2Entry.Zero : (long)((ulong)entry | Qcow2L2Entry.Copied);
        }

        if (current >= 0)
        {
            await file.WriteAsync(l2Offsets[current], OffsetTable.Serialize(l2, TableByteOrder.BigEndian), cancellationToken).ConfigureAwait(false);
        }

        long[] l1 = new long[l1Size];
        foreach ((long index, long offset) in l2Offsets)
        {
            l1[index] = (long)((ulong)offset | Qcow2L2Entry.Copied);
        }

        await file.WriteAsync(l1Cluster * clusterSize, OffsetTable.Serialize(l1, TableByteOrder.BigEndian, l1Clusters * clusterSize), cancellationToken).ConfigureAwait(false);

        byte[] block = new byte[clusterSize];
        for (long b = 0; b < blocks; b++)
        {
            Array.Clear(block);
            for (long k = 0; k < refcountsPerBlock; k++)
            {
                long cluster = (b * refcountsPerBlock) + k;
                if (cluster < end && map[cluster] != HostClusterMap.Free)
                {
                    Qcow2Refcounts.WriteEntry(block, k, RefcountOrder, 1);
                }
            }

            await file.WriteAsync((blocksCluster + b) * clusterSize, block, cancellationToken).ConfigureAwait(false);
        }

        long[] table = new long[blocks];
        for (long b = 0; b < blocks; b++)
        {
            table[b] = (blocksCluster + b) * clusterSize;
        }

        await file.WriteAsync(tableCluster * clusterSize, OffsetTable.Serialize(table, TableByteOrder.BigEndian, tableClusters * clusterSize), cancellationToken).ConfigureAwait(false);
        await file.FlushAsync(cancellationToken).ConfigureAwait(false);

        // The switch: the qcow2 header, its extensions and the backing name, in one write at offset 0.
        var header = new Qcow2Header
        {
            Version = version,
            ClusterBits = clusterBits,
            SizeBytes = geometry.ImageSizeBytes,
            L1Size = (int)l1Size,
            L1TableOffset = l1Cluster * clusterSize,
            RefcountTableOffset = tableCluster * clusterSize,
            RefcountTableClusters = (int)tableClusters,
            RefcountOrder = RefcountOrder,
            HeaderLength = version >= 3 ? Qcow2Header.V3Length : Qcow2Header.V2Length,
            BackingFileName = backingName,
        };
        if (backingName is not null && qed.Has(QedFeatures.BackingFormatNoProbe))
        {
            header = header.WithExtension(Qcow2HeaderExtension.BackingFormat, Encoding.UTF8.GetBytes("raw"));
        }

        if (version >= 3)
        {
            // The feature name table only while the whole header stays in the first sector, so the switch is one
            // sector write (which disks do atomically) whenever the backing name allows.
            Qcow2Header withTable = header.WithExtension(Qcow2HeaderExtension.FeatureNameTable, Qcow2Header.DefaultFeatureNameTable());
            header = withTable.SerializedLength <= QedLimits.SectorBytes ? withTable : header;
        }

        byte[] head = new byte[Math.Min(clusterSize, Qcow2ToQed.AlignUp(header.SerializedLength, QedLimits.SectorBytes))];
        header.Write(head);
        await file.WriteAsync(0, head, cancellationToken).ConfigureAwait(false);
        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        return new FormatConversionResult("qed", "qcow2", clusterSize, dataClusters, zeroClusters, file.BytesWritten, 0, 0, fileLength, file.File.Length);
    }
}

/// <summary>Reading a QED image for conversion: its L1/L2 walk.</summary>
internal static class QedSource
{
    /// <summary>Visits every mapped guest cluster in guest order: its QED entry (<see cref="QedTableEntry.Zero"/> or a
    /// host offset). Entries QEMU's check would call invalid are refused.</summary>
    public static async IAsyncEnumerable<(long GuestCluster, long Entry)> WalkAsync(IHostFile file, QedHeader header, QedGeometry geometry, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string path = file.Path;
        long fileEnd = geometry.StartOfCluster(file.Length);
        long[] l1 = await OffsetTable.ReadAsync(file, (long)header.L1TableOffset, geometry.L1EntriesUsed, QedImage.ByteOrder, cancellationToken).ConfigureAwait(false);
        long guestClusters = geometry.ClustersFor(geometry.ImageSizeBytes);
        for (int i = 0; i < l1.Length; i++)
        {
            long l2Offset = l1[i];
            if (l2Offset == 0)
            {
                continue;
            }

            if (!QedHeaderValidation.IsValidTableOffset((ulong)l2Offset, header, geometry, fileEnd))
            {
                throw new ImageCorruptException($"L1 entry {i} points to an invalid L2 table offset {l2Offset}; run 'imgtool check -r all'", "L1 table", (long)header.L1TableOffset + (i * 8L), path);
            }

            long[] l2 = await OffsetTable.ReadAsync(file, l2Offset, geometry.L2EntriesUsed(i), QedImage.ByteOrder, cancellationToken).ConfigureAwait(false);
            for (int j = 0; j < l2.Length; j++)
            {
                long guestCluster = ((long)i * geometry.TableEntries) + j;
                long entry = l2[j];
                if (entry == QedTableEntry.Unallocated || guestCluster >= guestClusters)
                {
                    continue;
                }

                if (entry != QedTableEntry.Zero && !QedHeaderValidation.IsValidClusterOffset((ulong)entry, header, fileEnd))
                {
                    throw new ImageCorruptException($"L2 entry for guest offset {guestCluster * geometry.ClusterSize} points to an invalid cluster offset {entry}; run 'imgtool check -r all'", "L2 table", l2Offset + (j * 8L), path);
                }

                yield return (guestCluster, entry);
            }
        }
    }
}

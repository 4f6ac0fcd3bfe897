using System.Buffers.Binary;
using ImgTool.Block.Host;
using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Formats.Qcow2;
using ImgTool.Formats.Qed;

namespace ImgTool.Formats.Amend;

/// <summary>
/// qcow2 -> QED in place. QED's cluster size is the qcow2 one, so every data cluster keeps its host offset; the QED
/// L2 tables and L1 table are appended past the end of the qcow2 file, then the QED header replaces the qcow2 header
/// in cluster 0. The qcow2 metadata clusters (refcount table and blocks, L1, L2) become holes, which
/// <see cref="QedCompaction"/> fills afterwards so that QED's check (which counts every unreferenced cluster as a
/// leak) comes out clean.
/// </summary>
internal static class Qcow2ToQed
{
    /// <summary>qemu-img 7.2 cannot open QED images with table_size 1 (see QedInteropTests), so the smallest table
    /// size we choose is 2: small tables make the holes of the old metadata easy to fill.</summary>
    private static readonly uint[] TableSizes = [2, 4, 8, 16];

    public static async ValueTask<FormatConversionResult> ConvertAsync(ConversionFile file, FormatConversionRequest request, CancellationToken cancellationToken)
    {
        string path = file.Path;
        foreach (KeyValuePair<string, string> option in request.TargetOptions.Values)
        {
            throw new UnsupportedFeatureException($"amend option '{option.Key}' is not supported yet together with format=qed", path);
        }

        long fileLength = file.File.Length;
        Qcow2Header qcow2 = await Qcow2Source.ReadHeaderAsync(file.File, cancellationToken).ConfigureAwait(false);
        Qcow2Source.RefuseUnconvertible(qcow2, path);
        int clusterSize = (int)qcow2.ClusterSize;
        if (!QedGeometry.IsValidClusterSize((ulong)clusterSize))
        {
            throw new UnsupportedFeatureException($"the qcow2 cluster size {clusterSize} is not a QED cluster size ({QedLimits.MinClusterSize} to {QedLimits.MaxClusterSize} bytes); data clusters cannot stay in place", path);
        }

        if (qcow2.SizeBytes % QedLimits.SectorBytes != 0)
        {
            throw new UnsupportedFeatureException($"the virtual size {qcow2.SizeBytes} is not a multiple of 512 bytes, which QED requires", path);
        }

        uint tableSize = TableSizes.FirstOrDefault(t => (ulong)qcow2.SizeBytes <= QedGeometry.QemuMaxImageSize((uint)clusterSize, t));
        if (tableSize == 0)
        {
            throw new UnsupportedFeatureException($"the virtual size {qcow2.SizeBytes} is too large for QED with {clusterSize}-byte clusters", path);
        }

        (byte[] backingName, QedFeatures features) = await BackingAsync(qcow2, clusterSize, request, path, cancellationToken).ConfigureAwait(false);
        var geometry = new QedGeometry((uint)clusterSize, tableSize, qcow2.SizeBytes);

        // Pass 1: walk the qcow2 tables, refusing what cannot be converted before anything is written, and map the
        // host clusters in use.
        long oldClusters = (fileLength + clusterSize - 1) / clusterSize;
        var map = new HostClusterMap(oldClusters, path);
        map.Claim(0, 1, HostClusterMap.Header, "header");
        var qedTables = new SortedSet<int>();
        long dataClusters = 0;
        long zeroClusters = 0;
        await foreach ((long guestCluster, long entry) in Qcow2Source.WalkAsync(file.File, qcow2, cancellationToken).ConfigureAwait(false))
        {
            if (entry == QedTableEntry.Zero)
            {
                zeroClusters++;
            }
            else
            {
                map.Claim(entry / clusterSize, 1, HostClusterMap.DataOwner(guestCluster), "data cluster");
                dataClusters++;
            }

            qedTables.Add(geometry.L1Index(guestCluster * clusterSize));
        }

        // The new tables go past the end of the qcow2 file: qcow2 does not reference that space, so the image stays a
        // valid qcow2 image until the header switches.
        long tableClusters = geometry.TableClusters;
        long start = oldClusters;
        long l1Cluster = start + (qedTables.Count * tableClusters);
        long end = l1Cluster + tableClusters;
        map.Grow(end);
        var l2Offsets = new Dictionary<int, long>();
        long next = start;
        foreach (int index in qedTables)
        {
            l2Offsets[index] = next * clusterSize;
            map.Set(next, tableClusters, HostClusterMap.L2Owner(index));
            next += tableClusters;
        }

        map.Set(l1Cluster, tableClusters, HostClusterMap.L1Table);
        long[] l1 = new long[geometry.TableEntries];
        foreach ((int index, long offset) in l2Offsets)
        {
            l1[index] = offset;
        }

        // Pass 2: write the QED L2 tables, one at a time (the walk visits guest clusters in order), then the L1 table.
        long[] l2 = new long[geometry.TableEntries];
        int current = -1;
        await foreach ((long guestCluster, long entry) in Qcow2Source.WalkAsync(file.File, qcow2, cancellationToken).ConfigureAwait(false))
        {
            int index = geometry.L1Index(guestCluster * clusterSize);
            if (index != current)
            {
                if (current >= 0)
                {
                    await file.WriteAsync(l2Offsets[current], OffsetTable.Serialize(l2, QedImage.ByteOrder), cancellationToken).ConfigureAwait(false);
                    Array.Clear(l2);
                }

                current = index;
            }

            l2[geometry.L2Index(guestCluster * clusterSize)] = entry;
        }

        if (current >= 0)
        {
            await file.WriteAsync(l2Offsets[current], OffsetTable.Serialize(l2, QedImage.ByteOrder), cancellationToken).ConfigureAwait(false);
        }

        long l1Offset = l1Cluster * clusterSize;
        await file.WriteAsync(l1Offset, OffsetTable.Serialize(l1, QedImage.ByteOrder), cancellationToken).ConfigureAwait(false);
        await file.FlushAsync(cancellationToken).ConfigureAwait(false);

        // The switch: the QED header and backing name, in one write of the first sector(s) of cluster 0.
        var header = new QedHeader(
            (uint)clusterSize,
            tableSize,
            HeaderClusters: 1,
            features,
            CompatFeatures: 0,
            AutoclearFeatures: 0,
            L1TableOffset: (ulong)l1Offset,
            ImageSize: (ulong)qcow2.SizeBytes,
            BackingFileNameOffset: backingName.Length > 0 ? QedHeader.SizeBytes : 0u,
            BackingFileNameSize: (uint)backingName.Length);
        byte[] head = new byte[AlignUp(QedHeader.SizeBytes + backingName.Length, QedLimits.SectorBytes)];
        header.Write(head);
        backingName.CopyTo(head, QedHeader.SizeBytes);
        await file.WriteAsync(0, head, cancellationToken).ConfigureAwait(false);
        await file.FlushAsync(cancellationToken).ConfigureAwait(false);

        // After the switch: fill the holes of the qcow2 metadata and shrink the file.
        var compaction = new QedCompaction(file, header, geometry, l1, map);
        await compaction.RunAsync(cancellationToken).ConfigureAwait(false);
        return new FormatConversionResult("qcow2", "qed", clusterSize, dataClusters, zeroClusters, file.BytesWritten,
            compaction.ClustersMoved, compaction.LeakedClusters, fileLength, file.File.Length);
    }

    private static async ValueTask<(byte[] Name, QedFeatures Features)> BackingAsync(Qcow2Header qcow2, int clusterSize, FormatConversionRequest request, string path, CancellationToken cancellationToken)
    {
        if (qcow2.BackingFileName is not { } name)
        {
            return ([], QedFeatures.None);
        }

        byte[] raw = Encoding.UTF8.GetBytes(name);
        int room = Math.Min(QedLimits.MaxBackingFileNameBytes, clusterSize - QedHeader.SizeBytes);
        if (raw.Length == 0 || raw.Length > room)
        {
            throw new UnsupportedFeatureException($"the backing file name is too long for a QED header ({raw.Length} bytes, at most {room})", path);
        }

        // QED records one backing format, raw, as "do not probe"; any other is found by probing on open. So a named
        // format other than raw is kept only if probing the backing file finds that same format.
        string? format = qcow2.BackingFormat;
        if (format == "raw")
        {
            return (raw, QedFeatures.BackingFile | QedFeatures.BackingFormatNoProbe);
        }

        if (format is not null)
        {
            string? probed = request.ProbeBackingFormat is { } probe ? await probe(name, cancellationToken).ConfigureAwait(false) : null;
            if (probed != format)
            {
                throw new UnsupportedFeatureException($"the backing format '{format}' cannot be recorded in QED (it stores only raw, or probes), and probing '{name}' finds {(probed is null ? "no format" : $"'{probed}'")}", path);
            }
        }

        return (raw, QedFeatures.BackingFile);
    }

    internal static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;

    internal static int AlignUp(int value, int alignment) => (value + alignment - 1) / alignment * alignment;
}

/// <summary>QED table entries (qed_spec "Table"): 0 is unallocated, 1 reads as zeros, anything else a cluster offset.</summary>
internal static class QedTableEntry
{
    public const long Unallocated = 0;
    public const long Zero = 1;
}

/// <summary>Reading a qcow2 image for conversion: its header, what cannot be converted, and its L1/L2 walk.</summary>
internal static class Qcow2Source
{
    public static async ValueTask<Qcow2Header> ReadHeaderAsync(IHostFile file, CancellationToken cancellationToken)
    {
        byte[] start = new byte[Qcow2Header.V3Length];
        await HostFileExtensions.ReadZeroFilledAsync(file, 0, start, cancellationToken).ConfigureAwait(false);
        uint clusterBits = BinaryPrimitives.ReadUInt32BigEndian(start.AsSpan(Qcow2Header.ClusterBitsOffset));
        if (BinaryPrimitives.ReadUInt32BigEndian(start) != Qcow2Header.Magic || clusterBits is < Qcow2Limits.MinClusterBits or > Qcow2Limits.MaxClusterBits)
        {
            throw new ImageFormatException("not a qcow2 image", file.Path);
        }

        byte[] head = new byte[Math.Min(1L << (int)clusterBits, Math.Max(file.Length, start.Length))];
        await HostFileExtensions.ReadZeroFilledAsync(file, 0, head, cancellationToken).ConfigureAwait(false);
        return Qcow2Header.Read(head, file.Length, file.Path);
    }

    /// <summary>The features QED has no equivalent for, or that make data clusters move or be shared.</summary>
    public static void RefuseUnconvertible(Qcow2Header header, string path)
    {
        string? reason =
            header.Incompatible.HasFlag(Qcow2Incompatible.Dirty) ? "the image is dirty (lazy refcounts were not written back); run 'imgtool check -r all' first"
            : header.Incompatible.HasFlag(Qcow2Incompatible.Corrupt) ? "the image is marked corrupt; repair it with 'imgtool check -r all' first"
            : header.CryptMethod != Qcow2Header.CryptMethodNone ? "encrypted images cannot be converted to QED (QED has no encryption)"
            : header.Incompatible.HasFlag(Qcow2Incompatible.ExternalDataFile) ? $"the image keeps its data in an external data file ('{header.ExternalDataFileName}'), which QED cannot reference"
            : header.ExtendedL2 ? "extended L2 entries (subclusters) cannot be represented in QED"
            : header.NbSnapshots > 0 ? $"the image has {header.NbSnapshots} internal snapshot(s), which QED cannot hold; delete them first"
            : header.Autoclear.HasFlag(Qcow2Autoclear.Bitmaps) || header.Extensions.Any(e => e.Type == Qcow2HeaderExtension.Bitmaps) ? "the image has persistent dirty bitmaps, which QED cannot hold; remove them first"
            : header.Extensions.FirstOrDefault(e => e.Type is not (Qcow2HeaderExtension.BackingFormat or Qcow2HeaderExtension.FeatureNameTable)) is { } ext ? $"the image has header extension 0x{ext.Type:x8}, which QED cannot keep"
            : null;
        if (reason is not null)
        {
            throw new UnsupportedFeatureException($"cannot convert to qed in place: {reason}", path);
        }
    }

    /// <summary>
    /// Visits every mapped guest cluster in guest order with its QED entry: <see cref="QedTableEntry.Zero"/> for a zero
    /// cluster (with or without a preallocated host cluster, which becomes a hole), else the data cluster's host offset.
    /// Unallocated clusters are skipped. Compressed clusters are refused; so is any entry that is not sane.
    /// </summary>
    public static async IAsyncEnumerable<(long GuestCluster, long Entry)> WalkAsync(IHostFile file, Qcow2Header header, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string path = file.Path;
        long clusterSize = header.ClusterSize;
        long fileLength = file.Length;
        int entriesPerL2 = (int)(clusterSize / OffsetTable.EntryBytes);
        long guestClusters = (header.SizeBytes + clusterSize - 1) / clusterSize;
        long[] l1 = await OffsetTable.ReadAsync(file, header.L1TableOffset, header.L1Size, TableByteOrder.BigEndian, cancellationToken).ConfigureAwait(false);
        byte[] raw = new byte[clusterSize];
        long[] l2 = new long[entriesPerL2];
        for (int i = 0; i < l1.Length && (long)i * entriesPerL2 < guestClusters; i++)
        {
            ulong l1Entry = (ulong)l1[i];
            long l2Offset = (long)(l1Entry & Qcow2L2Entry.OffsetMask);
            if (l2Offset == 0)
            {
                continue;
            }

            if (l2Offset % clusterSize != 0 || l2Offset + clusterSize > fileLength)
            {
                throw new ImageCorruptException($"L1 entry {i} points to an invalid L2 table offset {l2Offset}", "L1 table", header.L1TableOffset + (i * 8L), path);
            }

            await file.ReadZeroFilledAsync(l2Offset, raw, cancellationToken).ConfigureAwait(false);
            OffsetTable.Decode(raw, l2, TableByteOrder.BigEndian);
            for (int j = 0; j < entriesPerL2; j++)
            {
                long guestCluster = ((long)i * entriesPerL2) + j;
                if (guestCluster >= guestClusters)
                {
                    break;
                }

                ulong entry = (ulong)l2[j];
                long entryOffset = l2Offset + (j * 8L);
                if ((entry & Qcow2L2Entry.Compressed) != 0)
                {
                    throw new UnsupportedFeatureException($"cannot convert in place: the image has compressed clusters (guest offset {guestCluster * clusterSize}); decompress it with 'imgtool convert' instead", path);
                }

                long hostOffset = (long)(entry & Qcow2L2Entry.OffsetMask);
                bool zero = header.Version >= 3 && (entry & Qcow2L2Entry.Zero) != 0;
                if (zero)
                {
                    yield return (guestCluster, QedTableEntry.Zero);
                }
                else if (hostOffset != 0)
                {
                    if (hostOffset % clusterSize != 0 || hostOffset + clusterSize > Qcow2ToQed.AlignUp(fileLength, clusterSize) || hostOffset < clusterSize)
                    {
                        throw new ImageCorruptException($"L2 entry for guest offset {guestCluster * clusterSize} points to an invalid host offset {hostOffset}", "L2 table", entryOffset, path);
                    }

                    yield return (guestCluster, hostOffset);
                }
            }
        }
    }
}

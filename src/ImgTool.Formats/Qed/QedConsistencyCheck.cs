using ImgTool.Block.Devices;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qed;

/// <summary>
/// The consistency check of qed_spec "Consistency checking", with QEMU's counting (block/qed-check.c): every L1 and L2
/// entry is looked at, each cluster must be referenced once, offsets must be aligned and inside the file, and clusters
/// nothing references are leaks. Repair clears invalid entries (counted as fixed corruptions); clusters referenced twice
/// stay corruptions, and leaks are only counted, as QEMU's driver does (it has no way to give space back). Tables are
/// streamed in chunks, so even 1 GiB tables cost little memory. Runs with the metadata lock held by the caller.
/// </summary>
internal sealed class QedConsistencyCheck
{
    private readonly QedImage _image;
    private readonly IHostFile _file;
    private readonly QedHeader _header;
    private readonly QedGeometry _geometry;
    private readonly bool _fix;
    private readonly long _fileEnd;
    private readonly ulong[] _used;
    private readonly long _clusterCount;
    private readonly List<CheckFinding> _findings = [];
    private long _corruptions;
    private long _corruptionsFixed;
    private long _checkErrors;
    private long _allocated;
    private long _fragmented;

    private QedConsistencyCheck(QedImage image, bool fix, long clusterCount)
    {
        _image = image;
        _file = image.HostFile;
        _header = image.Header;
        _geometry = image.Geometry;
        _fix = fix;
        _fileEnd = image.FileEnd;
        _clusterCount = clusterCount;
        _used = new ulong[(clusterCount + 63) / 64];
    }

    public static async ValueTask<CheckReport> RunAsync(QedImage image, bool fix, CancellationToken cancellationToken)
    {
        long clusters = image.FileEnd >> image.Geometry.ClusterBits;
        long total = image.Geometry.ClustersFor(image.SizeBytes);
        if (clusters > QedLimits.MaxCheckedClusters)
        {
            return new CheckReport
            {
                CheckErrors = 1,
                TotalClusters = total,
                Findings = [new CheckFinding(CheckSeverity.CheckError, "image file", 0, $"the file has {clusters} clusters, more than the {QedLimits.MaxCheckedClusters} a check can track", false)],
            };
        }

        var check = new QedConsistencyCheck(image, fix, clusters);
        bool complete = await check.CheckL1TableAsync(cancellationToken).ConfigureAwait(false);
        long leaks = complete ? check.CountLeaks() : 0;
        if (fix && complete)
        {
            await check.MarkCleanAsync(cancellationToken).ConfigureAwait(false);
        }

        return new CheckReport
        {
            Findings = check._findings,
            Corruptions = check._corruptions,
            CorruptionsFixed = check._corruptionsFixed,
            CheckErrors = check._checkErrors,
            Leaks = leaks,
            TotalClusters = total,
            AllocatedClusters = check._allocated,
            FragmentedClusters = check._fragmented,
        };
    }

    /// <summary>Walks the whole L1 table and every L2 table it names; false when an I/O error cut the walk short.</summary>
    private async ValueTask<bool> CheckL1TableAsync(CancellationToken cancellationToken)
    {
        long l1Offset = (long)_header.L1TableOffset;
        MarkUsed(l1Offset, _geometry.TableClusters);
        bool complete = true;
        bool l1Changed = false;
        await ForEachChunkAsync(l1Offset, async (entries, firstIndex) =>
        {
            bool changed = false;
            for (int i = 0; i < entries.Length; i++)
            {
                long l2Offset = entries[i];
                if (l2Offset == 0)
                {
                    continue;
                }

                long entryOffset = l1Offset + ((firstIndex + i) * (long)OffsetTable.EntryBytes);
                if (!QedHeaderValidation.IsValidTableOffset((ulong)l2Offset, _header, _geometry, _fileEnd))
                {
                    Invalid("L1 table", entryOffset, $"L1 entry {firstIndex + i} points to an invalid L2 table offset {(ulong)l2Offset}");
                    if (_fix)
                    {
                        entries[i] = 0;
                        changed = true;
                    }

                    continue;
                }

                if (!MarkUsed(l2Offset, _geometry.TableClusters))
                {
                    _findings.Add(new CheckFinding(CheckSeverity.Corruption, "L1 table", entryOffset, $"the L2 table at {l2Offset} (L1 entry {firstIndex + i}) overlaps clusters referenced before", false));
                    continue;
                }

                try
                {
                    await CheckL2TableAsync(l2Offset, cancellationToken).ConfigureAwait(false);
                }
                catch (IOException e)
                {
                    _checkErrors++;
                    complete = false;
                    _findings.Add(new CheckFinding(CheckSeverity.CheckError, "L2 table", l2Offset, e.Message, false));
                }
            }

            l1Changed |= changed;
            return changed;
        }, cancellationToken).ConfigureAwait(false);

        if (l1Changed)
        {
            // The in-memory L1 follows what was written back.
            long[] used = await OffsetTable.ReadAsync(_file, l1Offset, _image.L1.Length, QedImage.ByteOrder, cancellationToken).ConfigureAwait(false);
            used.CopyTo(_image.L1, 0);
        }

        return complete;
    }

    private async ValueTask CheckL2TableAsync(long l2Offset, CancellationToken cancellationToken)
    {
        long lastOffset = 0;
        bool changed = false;
        await ForEachChunkAsync(l2Offset, (entries, firstIndex) =>
        {
            bool chunkChanged = false;
            for (int i = 0; i < entries.Length; i++)
            {
                long offset = entries[i];
                if (offset is 0 or QedImage.ZeroClusterEntry)
                {
                    continue;
                }

                // QEMU counts allocation and fragmentation before it validates the entry, per L2 table.
                _allocated++;
                if (lastOffset != 0 && lastOffset + _geometry.ClusterSize != offset)
                {
                    _fragmented++;
                }

                lastOffset = offset;
                if (!QedHeaderValidation.IsValidClusterOffset((ulong)offset, _header, _fileEnd))
                {
                    Invalid("L2 table", l2Offset + ((firstIndex + i) * (long)OffsetTable.EntryBytes), $"L2 entry {firstIndex + i} of the table at {l2Offset} points to an invalid cluster offset {(ulong)offset}");
                    if (_fix)
                    {
                        entries[i] = 0;
                        chunkChanged = true;
                    }

                    continue;
                }

                if (!MarkUsed(offset, 1))
                {
                    _findings.Add(new CheckFinding(CheckSeverity.Corruption, "L2 table", l2Offset + ((firstIndex + i) * (long)OffsetTable.EntryBytes), $"cluster {offset} is referenced more than once", false));
                }
            }

            changed |= chunkChanged;
            return ValueTask.FromResult(chunkChanged);
        }, cancellationToken).ConfigureAwait(false);

        if (changed)
        {
            _image.L2Cache.Clear();
        }
    }

    /// <summary>Reads a table in chunks; a chunk the callback changed is written back in place.</summary>
    private async ValueTask ForEachChunkAsync(long tableOffset, Func<long[], int, ValueTask<bool>> visit, CancellationToken cancellationToken)
    {
        int chunkEntries = Math.Min(_geometry.TableEntries, QedLimits.CheckChunkEntries);
        byte[] raw = new byte[chunkEntries * OffsetTable.EntryBytes];
        long[] entries = new long[chunkEntries];
        for (int first = 0; first < _geometry.TableEntries; first += chunkEntries)
        {
            long at = tableOffset + (first * (long)OffsetTable.EntryBytes);
            await _file.ReadZeroFilledAsync(at, raw, cancellationToken).ConfigureAwait(false);
            OffsetTable.Decode(raw, entries, QedImage.ByteOrder);
            if (await visit(entries, first).ConfigureAwait(false))
            {
                OffsetTable.Encode(entries, raw, QedImage.ByteOrder);
                await _file.WriteAsync(at, raw, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void Invalid(string structure, long entryOffset, string message)
    {
        if (_fix)
        {
            _corruptionsFixed++;
        }
        else
        {
            _corruptions++;
        }

        _findings.Add(new CheckFinding(CheckSeverity.Corruption, structure, entryOffset, message, _fix));
    }

    /// <summary>Marks clusters referenced; a cluster referenced before is a corruption (QEMU's qed_set_used_clusters).</summary>
    private bool MarkUsed(long offset, int clusters)
    {
        long first = offset >> _geometry.ClusterBits;
        int twice = 0;
        for (long c = first; c < first + clusters; c++)
        {
            if (c >= _clusterCount)
            {
                continue;
            }

            ulong bit = 1UL << (int)(c & 63);
            if ((_used[c >> 6] & bit) != 0)
            {
                twice++;
            }

            _used[c >> 6] |= bit;
        }

        _corruptions += twice;
        return twice == 0;
    }

    /// <summary>Clusters after the header that nothing references.</summary>
    private long CountLeaks()
    {
        long leaks = 0;
        for (long c = _header.HeaderClusters; c < _clusterCount; c++)
        {
            if ((_used[c >> 6] & (1UL << (int)(c & 63))) == 0)
            {
                leaks++;
            }
        }

        return leaks;
    }

    /// <summary>QEMU's qed_check_mark_clean: with nothing left unfixed, the repairs are flushed and the need-check bit cleared.</summary>
    private async ValueTask MarkCleanAsync(CancellationToken cancellationToken)
    {
        if (_corruptions > 0 || _checkErrors > 0 || !_image.Header.Has(QedFeatures.NeedCheck))
        {
            return;
        }

        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
        await _image.WriteHeaderAsync(_image.Header with { Features = _image.Header.Features & ~QedFeatures.NeedCheck }, cancellationToken).ConfigureAwait(false);
    }
}

using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// The OFLAG_COPIED pass (QEMU's check_oflag_copied): a second walk over the active L1 and L2 tables once
/// the refcounts are final, instead of remembering every entry during the first walk, so memory stays at
/// one cluster plus the refcount cache however large the image is.
/// </summary>
internal sealed partial class Qcow2Check
{
    /// <summary>Whether an L2 entry names a standard host cluster (not unallocated, not compressed, not a v3
    /// "zero, plain" entry); the offset may still be unaligned.</summary>
    private bool HasStandardHostCluster(ulong entry, out long offset)
    {
        offset = (long)(entry & Qcow2L2Entry.OffsetMask);
        if ((entry & Qcow2L2Entry.Compressed) != 0 || !image.HasHostCluster(entry))
        {
            return false;
        }

        bool zeroPlain = !image.ExtendedL2 && offset == 0 && (entry & Qcow2L2Entry.Zero) != 0 && image.Header.Version >= 3;
        return !zeroPlain;
    }

    /// <summary>Checks (and with <paramref name="fix"/> corrects) the COPIED bit of every active L1 and L2 entry
    /// that the first walk accepted; returns the number corrected.</summary>
    private async ValueTask<long> CheckCopiedFlagsAsync(bool fix, CancellationToken cancellationToken)
    {
        long l1TableOffset = image.Header.L1TableOffset;
        long corrected = 0;
        byte[] l2 = Scratch;
        for (long i = 0; i < image.L1.Length; i++)
        {
            ulong l1Entry = (ulong)image.L1[i];
            long l2Offset = (long)(l1Entry & Qcow2L2Entry.OffsetMask);
            if (l2Offset == 0 || (l2Offset & (ClusterSize - 1)) != 0 || l2Offset + ClusterSize > _fileLength)
            {
                continue;
            }

            long l1EntryOffset = l1TableOffset + (i * 8);
            ulong? l2Refcount = await RefcountAsync(l2Offset / ClusterSize, cancellationToken).ConfigureAwait(false);
            if (CopiedMismatch(l1EntryOffset, l1Entry, l2Refcount, l1Index: i, fix))
            {
                await image.SetL1EntryAsync(i, l1Entry ^ Qcow2L2Entry.Copied, cancellationToken).ConfigureAwait(false);
                corrected++;
            }

            await File.ReadZeroFilledAsync(l2Offset, l2, cancellationToken).ConfigureAwait(false);
            for (long j = 0; j < image.L2Entries; j++)
            {
                (ulong entry, _) = image.ReadL2Entry(l2, j);
                // An unaligned entry is judged too, by the cluster its offset falls in, as QEMU's check_oflag_copied.
                if (!HasStandardHostCluster(entry, out long offset))
                {
                    continue;
                }

                // Data clusters in an external data file are not refcounted: their refcount is implicitly one.
                ulong? refcount = 1;
                if (!image.HasExternalDataFile && !TryCachedRefcount(offset / ClusterSize, out refcount))
                {
                    refcount = await RefcountAsync(offset / ClusterSize, cancellationToken).ConfigureAwait(false);
                }

                long entryOffset = l2Offset + (j * image.L2EntryBytes);
                if (CopiedMismatch(entryOffset, entry, refcount, l1Index: null, fix))
                {
                    byte[] raw = new byte[8];
                    BinaryPrimitives.WriteUInt64BigEndian(raw, entry ^ Qcow2L2Entry.Copied);
                    await File.WriteAsync(entryOffset, raw, cancellationToken).ConfigureAwait(false);
                    corrected++;
                }
            }
        }

        return corrected;
    }

    /// <summary>Reports an entry whose COPIED bit disagrees with its cluster's refcount (null: unreadable, not
    /// judged); true when it is to be flipped. QEMU words it by the entry's value (and L1 index), and prints one
    /// line, "Repairing" instead of "ERROR", when it flips the bit.</summary>
    /// <param name="l1Index">The L1 index for an L1 entry (about its L2 table); null for an L2 entry (about a data cluster).</param>
    private bool CopiedMismatch(long entryOffset, ulong entry, ulong? refcount, long? l1Index, bool fix)
    {
        if (refcount is not { } value || (value == 1) == ((entry & Qcow2L2Entry.Copied) != 0))
        {
            return false;
        }

        _corruptions++;
        (string structure, string message) = l1Index is { } index
            ? ("L1 table", $"OFLAG_COPIED L2 cluster: l1_index={index} l1_entry={entry:x} refcount={value}")
            : ("L2 table", $"OFLAG_COPIED data cluster: l2_entry={entry:x} refcount={value}");
        if (fix)
        {
            _repairs.Add(new CheckRepairAction(structure, entryOffset, $"Repairing {message}", _findings.Count));
        }
        else
        {
            _findings.Add(new CheckFinding(CheckSeverity.Corruption, structure, entryOffset, message, false) { QemuLine = $"ERROR {message}" });
        }

        return fix;
    }

    /// <summary>A cluster's refcount as the refcount structure now stores it (after any repair, which writes
    /// through the cache), or null when its refcount block cannot be read.</summary>
    private async ValueTask<ulong?> RefcountAsync(long cluster, CancellationToken cancellationToken)
    {
        try
        {
            return await image.Refcounts.GetAsync(cluster, cancellationToken).ConfigureAwait(false);
        }
        catch (ImageCorruptException)
        {
            return null;
        }
    }

    /// <summary>The refcount without I/O when its block is cached (the common case: one block covers thousands of clusters).</summary>
    private bool TryCachedRefcount(long cluster, out ulong? refcount)
    {
        try
        {
            bool known = image.Refcounts.TryGetCached(cluster, out ulong value, out _);
            refcount = value;
            return known;
        }
        catch (ImageCorruptException)
        {
            refcount = null;
            return true;
        }
    }
}

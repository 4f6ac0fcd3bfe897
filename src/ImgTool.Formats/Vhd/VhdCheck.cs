using ImgTool.Block.Devices;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Vhd;

/// <summary>
/// `check` for VHD (qemu-img has none for vpc): BAT entries that point outside the file or into the metadata, blocks that
/// overlap each other, and footer copies that disagree. Nothing is repaired: a wrong BAT entry cannot be guessed right.
/// </summary>
internal sealed partial class VhdImage
{
    public async ValueTask<CheckReport> CheckAsync(CheckRepair repair, CancellationToken cancellationToken = default)
    {
        var findings = new List<CheckFinding>();
        long length = _file.Length;
        await CheckFootersAsync(findings, length, cancellationToken).ConfigureAwait(false);
        if (IsFixed)
        {
            return Report(findings, length, null, null);
        }

        VhdDynamicHeader header = Header!.Value;
        byte[] headerBytes = new byte[VhdDynamicHeader.SizeBytes];
        await _file.ReadZeroFilledAsync((long)Footer.DataOffset, headerBytes, cancellationToken).ConfigureAwait(false);
        if (!VhdDynamicHeader.ChecksumMatches(headerBytes))
        {
            findings.Add(new CheckFinding(CheckSeverity.Corruption, "dynamic disk header", (long)Footer.DataOffset, "the dynamic disk header checksum is wrong", false));
        }

        int bitmapBytes = _bitmaps!.BitmapBytes;
        long blockSpan = bitmapBytes + (long)_blockBytes;

        // Metadata the blocks must stay clear of: footer copy, header, BAT, parent locator data.
        var metadata = new List<(long Start, long End, string What)>
        {
            (0, VhdFooter.SizeBytes, "footer copy"),
            ((long)Footer.DataOffset, (long)Footer.DataOffset + VhdDynamicHeader.SizeBytes, "dynamic disk header"),
            ((long)header.TableOffset, RoundUpSector((long)header.TableOffset + (_bat.Length * 4L)), "BAT"),
        };
        foreach (VhdParentLocator locator in header.ParentLocators.Where(l => !l.IsEmpty && l.DataLength > 0 && l.DataOffset < (ulong)length))
        {
            metadata.Add(((long)locator.DataOffset, (long)locator.DataOffset + locator.DataLength, "parent locator"));
        }

        var blocks = new List<(long Start, long Index)>();
        long allocated = 0;
        for (long i = 0; i < _bat.Length; i++)
        {
            uint entry = _bat[i];
            if (entry == Unallocated)
            {
                continue;
            }

            allocated++;
            long start = (long)entry * VhdLimits.SectorBytes;
            long end = start + blockSpan;
            long entryOffset = (long)header.TableOffset + (i * 4);
            if (end > length)
            {
                findings.Add(new CheckFinding(CheckSeverity.Corruption, "BAT", entryOffset, $"BAT entry {i} points past the end of the file (block at {start}, file is {length} bytes)", false));
                continue;
            }

            foreach (var (mStart, mEnd, what) in metadata)
            {
                if (start < mEnd && mStart < end)
                {
                    findings.Add(new CheckFinding(CheckSeverity.Corruption, "BAT", entryOffset, $"BAT entry {i}: block at {start} overlaps the {what}", false));
                }
            }

            blocks.Add((start, i));
        }

        blocks.Sort();
        for (int k = 1; k < blocks.Count; k++)
        {
            if (blocks[k].Start < blocks[k - 1].Start + blockSpan)
            {
                findings.Add(new CheckFinding(
                    CheckSeverity.Corruption, "BAT", (long)header.TableOffset + (blocks[k].Index * 4),
                    $"BAT entries {blocks[k - 1].Index} and {blocks[k].Index} overlap (blocks at {blocks[k - 1].Start} and {blocks[k].Start})", false));
            }
        }

        return Report(findings, length, _bat.Length, allocated);
    }

    private async ValueTask CheckFootersAsync(List<CheckFinding> findings, long length, CancellationToken cancellationToken)
    {
        byte[] tail = new byte[VhdFooter.SizeBytes];
        await _file.ReadZeroFilledAsync(length - VhdFooter.SizeBytes, tail, cancellationToken).ConfigureAwait(false);
        if (!VhdFooter.HasCookie(tail) || !VhdFooter.ChecksumMatches(tail))
        {
            findings.Add(new CheckFinding(CheckSeverity.Corruption, "footer", length - VhdFooter.SizeBytes, "the footer at the end of the file is missing or its checksum is wrong", false));
        }

        if (!IsFixed)
        {
            byte[] head = new byte[VhdFooter.SizeBytes];
            await _file.ReadZeroFilledAsync(0, head, cancellationToken).ConfigureAwait(false);
            if (!VhdFooter.HasCookie(head) || !VhdFooter.ChecksumMatches(head))
            {
                findings.Add(new CheckFinding(CheckSeverity.Corruption, "footer", 0, "the footer copy at the start of the file is missing or its checksum is wrong", false));
            }
            else if (VhdFooter.HasCookie(tail) && !head.AsSpan().SequenceEqual(tail))
            {
                findings.Add(new CheckFinding(CheckSeverity.Corruption, "footer", 0, "the two footer copies differ", false));
            }
        }
    }

    private static CheckReport Report(List<CheckFinding> findings, long length, long? total, long? allocated) => new()
    {
        Findings = findings,
        Corruptions = findings.Count(f => f.Severity == CheckSeverity.Corruption),
        ImageEndOffset = length,
        TotalClusters = total,
        AllocatedClusters = allocated,
    };
}

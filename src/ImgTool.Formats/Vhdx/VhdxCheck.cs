using ImgTool.Block.Devices;

namespace ImgTool.Formats.Vhdx;

/// <summary>
/// Consistency check (QEMU's vhdx_co_check and more): BAT entries with invalid states, payload and
/// bitmap blocks outside the file or over the header section, log, BAT or metadata, and blocks that
/// overlap each other; a log that still needs replaying.
/// </summary>
internal static class VhdxCheck
{
    public static CheckReport Run(VhdxImage image)
    {
        VhdxBatGeometry g = image.Geometry;
        VhdxLayoutInfo layout = image.Layout;
        long fileLength = image.HostFile.Length;
        var findings = new List<CheckFinding>();
        var extents = new List<(long Start, long End, string What)>
        {
            (0, VhdxLayout.HeaderSectionEnd, "the header section"),
            ((long)layout.Header.LogOffsetBytes, (long)layout.Header.LogOffsetBytes + layout.Header.LogLengthBytes, "the log"),
            (layout.BatOffsetBytes, layout.BatOffsetBytes + layout.BatLengthBytes, "the BAT"),
            (layout.MetadataOffsetBytes, layout.MetadataOffsetBytes + layout.MetadataLengthBytes, "the metadata region"),
        };

        void Corrupt(long index, string message) =>
            findings.Add(new CheckFinding(CheckSeverity.Corruption, "BAT entry", layout.BatOffsetBytes + (index * VhdxBatGeometry.EntryBytes), message, false));

        long allocated = 0;
        for (long index = 0; index < g.TotalEntries; index++)
        {
            bool isBitmap = (index % (g.ChunkRatio + 1)) == g.ChunkRatio;
            ulong entry = image.BatEntry(index);
            VhdxBlockState state = VhdxBatGeometry.StateOf(entry);
            long offset = VhdxBatGeometry.OffsetOf(entry);
            long length = isBitmap ? VhdxBatGeometry.SectorBitmapBlockBytes : g.BlockSizeBytes;
            bool present = isBitmap
                ? state == VhdxBlockState.FullyPresent
                : state is VhdxBlockState.FullyPresent or VhdxBlockState.PartiallyPresent;
            bool valid = isBitmap
                ? state is VhdxBlockState.NotPresent or VhdxBlockState.FullyPresent
                : state is VhdxBlockState.NotPresent or VhdxBlockState.Undefined or VhdxBlockState.Zero or VhdxBlockState.Unmapped or VhdxBlockState.UnmappedV095 or VhdxBlockState.FullyPresent
                    || (state == VhdxBlockState.PartiallyPresent && g.HasParent);
            if (!valid)
            {
                Corrupt(index, $"{(isBitmap ? "sector bitmap" : "payload")} entry {index} has invalid state {(int)state}");
                continue;
            }

            if (!present)
            {
                continue;
            }

            if (!isBitmap)
            {
                allocated++;
            }

            if (offset > fileLength - length)
            {
                Corrupt(index, $"entry {index} points to {offset}, past the end of the file ({fileLength})");
                continue;
            }

            extents.Add((offset, offset + length, $"the block of BAT entry {index}"));
        }

        extents.Sort((a, b) => a.Start.CompareTo(b.Start));
        for (int i = 1; i < extents.Count; i++)
        {
            if (extents[i].Start < extents[i - 1].End)
            {
                findings.Add(new CheckFinding(CheckSeverity.Corruption, "BAT entry", extents[i].Start,
                    $"{extents[i].What} at {extents[i].Start} overlaps {extents[i - 1].What}", false));
            }
        }

        long fixedCount = 0;
        if (image.LogReplayedInMemory)
        {
            findings.Add(new CheckFinding(CheckSeverity.Corruption, "log", (long)layout.Header.LogOffsetBytes,
                "the log holds changes that were not replayed (check -r all or any read-write open replays them)", false));
        }
        else if (image.LogReplayedOnOpen)
        {
            fixedCount = 1; // as QEMU: the replay on open counts as one fixed corruption
        }

        return new CheckReport
        {
            Findings = findings,
            Corruptions = findings.Count(f => f.Severity == CheckSeverity.Corruption),
            CorruptionsFixed = fixedCount,
        };
    }
}

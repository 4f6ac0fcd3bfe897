namespace ImgTool.Block.Devices;

public enum CheckSeverity
{
    /// <summary>Space allocated but unused: harmless, repaired by `-r leaks`.</summary>
    Leak,

    /// <summary>Metadata that is wrong and may lose data: repaired by `-r all` where possible.</summary>
    Corruption,

    /// <summary>The check could not read or finish something.</summary>
    CheckError,
}

/// <summary>One problem a check found.</summary>
/// <param name="Structure">What the finding is about (e.g. "data cluster", "L2 table", "refcount block"): for a
/// refcount that disagrees with the references, the structure that references the cluster, not the refcount block
/// that stores the number.</param>
/// <param name="OffsetBytes">Where that structure (or the entry naming it) is in the image file.</param>
public sealed record CheckFinding(CheckSeverity Severity, string Structure, long OffsetBytes, string Message, bool Repaired)
{
    /// <summary>
    /// The line qemu-img prints for this finding, its verb included ("ERROR cluster 5 refcount=0 reference=1"),
    /// for checks that follow qemu-img's wording; null where qemu-img has no such line, and the renderer then
    /// names the structure and offset itself.
    /// </summary>
    public string? QemuLine { get; init; }

    /// <summary>
    /// A finding the repair pass states again because it could not repair it (qemu-img's repairing compare prints
    /// every mismatch once more); printed with the lines, but not counted again nor listed twice in JSON.
    /// </summary>
    public bool Restated { get; init; }
}

/// <summary>
/// One change a repair made, in the order it was made (qemu-img prints them as they happen).
/// </summary>
/// <param name="Structure">What was changed ("data cluster", "refcount table", ...).</param>
/// <param name="Message">qemu-img's line for it, verb included: "Repairing cluster 53 refcount=1 reference=0",
/// "Rebuilding refcount structure", "Repairing OFLAG_COPIED data cluster: l2_entry=50000 refcount=1".</param>
/// <param name="FindingsBefore">How many of the report's findings were made before this repair: the human
/// renderer prints it after them, as qemu-img interleaves its lines.</param>
public sealed record CheckRepairAction(string Structure, long OffsetBytes, string Message, int FindingsBefore);

/// <summary>
/// The outcome of a consistency check, with the counters qemu-img's ImageCheck reports
/// (check-errors, leaks, corruptions, ...), so both renderers can print what qemu-img prints.
/// </summary>
public sealed record CheckReport
{
    public IReadOnlyList<CheckFinding> Findings { get; init; } = [];

    /// <summary>What a repair (-r leaks / -r all) changed, in order; empty for a plain check.</summary>
    public IReadOnlyList<CheckRepairAction> Repairs { get; init; } = [];

    /// <summary>
    /// The check gave up before it could report counts (qemu-img: "Check failed", exit 1, no summary), e.g. when
    /// -r leaks meets a refcount structure that only a rebuild (-r all) can repair.
    /// </summary>
    public string? FailedReason { get; init; }

    public long Corruptions { get; init; }

    public long Leaks { get; init; }

    public long CheckErrors { get; init; }

    public long CorruptionsFixed { get; init; }

    public long LeaksFixed { get; init; }

    public long? ImageEndOffset { get; init; }

    public long? TotalClusters { get; init; }

    public long? AllocatedClusters { get; init; }

    public long? FragmentedClusters { get; init; }

    public long? CompressedClusters { get; init; }
}

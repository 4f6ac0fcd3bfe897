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
/// <param name="Structure">The metadata structure involved (e.g. "L2 table", "refcount block").</param>
public sealed record CheckFinding(CheckSeverity Severity, string Structure, long OffsetBytes, string Message, bool Repaired);

/// <summary>
/// The outcome of a consistency check, with the counters qemu-img's ImageCheck reports
/// (check-errors, leaks, corruptions, ...), so both renderers can print what qemu-img prints.
/// </summary>
public sealed record CheckReport
{
    public IReadOnlyList<CheckFinding> Findings { get; init; } = [];

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

namespace ImgTool.Formats.Qed;

/// <summary>What a run of guest clusters is in a QED image (QEMU's QED_CLUSTER_FOUND / ZERO / L2 / L1).</summary>
internal enum QedRunKind
{
    /// <summary>Allocated clusters, contiguous in the file.</summary>
    Data,

    /// <summary>L2 entries of 1: reads as zeros and hides the backing file.</summary>
    Zero,

    /// <summary>L2 entries of 0, or no L2 table at all: reads fall through to the backing file.</summary>
    Unallocated,
}

/// <summary>One run of guest bytes of the same kind, within one L2 table.</summary>
/// <param name="HostOffsetBytes">For <see cref="QedRunKind.Data"/>, where the run's first byte is in the file; else -1.</param>
/// <param name="L2Missing">The L1 entry is 0: an allocating write must make the L2 table first.</param>
internal readonly record struct QedRun(QedRunKind Kind, long LengthBytes, long HostOffsetBytes, bool L2Missing);

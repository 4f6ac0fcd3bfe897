using ImgTool.Block.Host;

namespace ImgTool.Operations.Convert;

/// <summary>imgtool convert's options, named after qemu-img's flags.</summary>
/// <param name="Sources">One or more source images, concatenated in order.</param>
/// <param name="SparseBytes">-S: zero runs of at least this many bytes are not written; 0 writes everything (fully allocated target).</param>
/// <param name="NoCreate">-n: the target exists already and is not created.</param>
/// <param name="Parallel">-m: requests in flight (1..16).</param>
/// <param name="OutOfOrder">-W: writes may complete out of order.</param>
/// <param name="TargetFormat">-O: the target format; null for raw (or the preset's).</param>
/// <param name="Preset">--preset: a destination platform's format, options and size rounding.</param>
/// <param name="TargetIsZero">--target-is-zero: with -n, the existing target is known to read as zeros.</param>
/// <param name="BackingFile">-B: the new target gets this backing file (named relative to the target's folder), and
/// what the source's own top layer does not hold is left to it; the backing file is meant to hold what the source's
/// backing chain holds, as qemu-img assumes.</param>
/// <param name="BackingFormat">-F: the backing file's format, required with -B.</param>
/// <param name="Snapshot">-l: convert the source as an internal snapshot of it holds it: a snapshot ID or name, or
/// qemu-img's "snapshot.id=ID,snapshot.name=NAME".</param>
public sealed record ConvertOptions(
    IReadOnlyList<string> Sources,
    string Target,
    string? SourceFormat = null,
    string? TargetFormat = null,
    IReadOnlyList<string>? TargetOptionStrings = null,
    bool Compress = false,
    long SparseBytes = 4096,
    bool NoCreate = false,
    int Parallel = 8,
    bool OutOfOrder = false,
    bool TargetIsZero = false,
    bool ForceShare = false,
    CacheMode TargetCache = CacheMode.Unsafe,
    CacheMode SourceCache = CacheMode.Writeback,
    string? Preset = null,
    string? BackingFile = null,
    string? BackingFormat = null,
    string? Snapshot = null)
{
    /// <summary>qemu-img's -S limit (MAX_BUF_SECTORS, 32768 sectors): a zero run longer than one request still
    /// counts, as qemu-img treats a buffer that is zero to its end as a zero run.</summary>
    public const long MaxSparseBytes = 16L << 20;

    /// <summary>qemu-img's words for a -S out of range, on one line.</summary>
    public const string InvalidSparseSize = "Invalid buffer size for sparse output specified. Valid sizes are multiples of 512 up to 16777216. Select 0 to disable sparse detection (fully allocates output).";

    /// <summary>qemu-img's words for a -S that is no size (its two lines joined).</summary>
    public const string UnparsableSparseSize = "Invalid buffer size for sparse output specified. You may use k, M, G, T, P or E suffixes for kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.";
}

/// <summary>What convert did.</summary>
/// <param name="DataBytesRead">Bytes read from the sources (zero and unallocated ranges are never read).</param>
/// <param name="BytesWritten">Bytes written to the target as data.</param>
/// <param name="ZeroBytesSkipped">Bytes not written because they read as zeros and the target already did.</param>
/// <param name="SourceSizeBytes">The sources' total size; the target is larger only when a preset rounded it up.</param>
/// <param name="ZeroBytesWritten">Bytes made zero in the target with write-zeroes requests.</param>
public sealed record ConvertResult(
    string Target,
    string TargetFormat,
    long VirtualSizeBytes,
    long DataBytesRead,
    long BytesWritten,
    long ZeroBytesSkipped,
    long ZeroBytesWritten,
    TimeSpan Elapsed,
    long SourceSizeBytes,
    string? Preset = null);

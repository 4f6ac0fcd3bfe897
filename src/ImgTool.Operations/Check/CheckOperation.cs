using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Formats;

namespace ImgTool.Operations.Check;

/// <param name="Cache">-T src_cache: how the checked image is opened (qemu-img's default, writeback).</param>
public sealed record CheckOptions(string FileName, string? Format = null, CheckRepair Repair = CheckRepair.None, bool ForceShare = false, CacheMode Cache = CacheMode.Writeback);

/// <summary>The check's outcome; <see cref="Supported"/> is false for formats without checks (qemu-img exits 63).</summary>
/// <param name="Report">After a repair, the report of the second check that verifies it, carrying the counts of what was fixed.</param>
public sealed record CheckResult(string FileName, string Format, bool Supported, CheckReport Report)
{
    /// <summary>The first check of a repair run, which found the problems and made the repairs (its findings and
    /// <see cref="CheckReport.Repairs"/> say what was changed); null when nothing was repaired.</summary>
    public CheckReport? RepairPass { get; init; }

    /// <summary>The check gave up (qemu-img's "Check failed"): the findings so far and this reason, no summary.</summary>
    public string? FailedReason => Report.FailedReason;

    /// <summary>qemu-img check's exit code: 0 clean, 1 check not completed, 2 corruptions, 3 leaks, 63 not supported.</summary>
    public int ExitCode =>
        !Supported ? 63
        : Report.FailedReason is not null || Report.CheckErrors > 0 ? 1
        : Report.Corruptions > 0 ? 2
        : Report.Leaks > 0 ? 3
        : 0;

    public bool Repaired => Report.LeaksFixed > 0 || Report.CorruptionsFixed > 0;
}

/// <summary>imgtool check: metadata consistency, with optional repair (-r leaks / -r all).</summary>
public sealed class CheckOperation(ImageOpener opener)
{
    public async ValueTask<CheckResult> RunAsync(CheckOptions options, CancellationToken cancellationToken = default)
    {
        // Only a repair writes; a plain check takes a shared lock like every other reader.
        bool readOnly = options.Repair == CheckRepair.None;
        await using IImage image = await opener.OpenAsync(
            options.FileName,
            new ImageOpenRequest(options.Format, ReadOnly: readOnly, ForceShare: options.ForceShare && readOnly, Cache: options.Cache, OpenBacking: false, Checking: true),
            cancellationToken).ConfigureAwait(false);

        if (image is not ICheckable checkable)
        {
            return new CheckResult(options.FileName, image.FormatName, false, new CheckReport());
        }

        CheckReport report = await checkable.CheckAsync(options.Repair, cancellationToken).ConfigureAwait(false);
        if (report.FailedReason is null && (report.LeaksFixed > 0 || report.CorruptionsFixed > 0))
        {
            // As qemu-img: check the repaired image again and report that, with the repair counts; the first
            // pass is kept for what it found and changed.
            CheckReport again = await checkable.CheckAsync(CheckRepair.None, cancellationToken).ConfigureAwait(false);
            return new CheckResult(options.FileName, image.FormatName, true, again with { LeaksFixed = report.LeaksFixed, CorruptionsFixed = report.CorruptionsFixed })
            {
                RepairPass = report,
            };
        }

        return new CheckResult(options.FileName, image.FormatName, true, report);
    }
}

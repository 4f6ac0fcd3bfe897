using System.CommandLine;
using System.Globalization;
using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Check;

namespace ImgTool.Cli.Commands;

/// <summary>check [-f fmt] [--output=ofmt] [-r leaks|all] [-T src_cache] [-U] filename. Exit 0 clean, 1 not completed, 2 corrupt, 3 leaks, 63 unsupported.</summary>
internal static class CheckCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var output = CommonOptions.Output();
        var repair = new Option<string?>("-r") { Description = "Repair: leaks, or all", HelpName = "leaks|all" }.AcceptOnlyFromAmong("leaks", "all");
        var forceShare = CommonOptions.ForceShare();
        var sourceCache = CommonOptions.Cache("-T", "Cache mode for the image (default writeback)");
        var file = new Argument<string>("filename");
        var command = new Command("check", "Check an image's metadata for consistency") { format, output, repair, forceShare, sourceCache, file };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            CheckRepair mode = parse.GetValue(repair) switch
            {
                "leaks" => CheckRepair.Leaks,
                "all" => CheckRepair.All,
                _ => CheckRepair.None,
            };
            CheckResult result = await new CheckOperation(context.Opener).RunAsync(
                new CheckOptions(parse.GetValue(file)!, parse.GetValue(format), mode, parse.GetValue(forceShare), CommonOptions.ParseSourceCache(parse.GetValue(sourceCache))),
                cancellationToken).ConfigureAwait(false);
            if (!result.Supported)
            {
                // qemu-img's wording and exit code (63) for a format without checks.
                await context.Error.WriteLineAsync("imgtool: This image format does not support checks").ConfigureAwait(false);
                return result.ExitCode;
            }

            if (result.FailedReason is { } reason)
            {
                // qemu-img prints what it found, then "Check failed", and no summary (exit 1).
                await WriteLinesAsync(context, result.Report).ConfigureAwait(false);
                await context.Error.WriteLineAsync($"imgtool: {result.FileName}: Check failed: {reason}").ConfigureAwait(false);
                return result.ExitCode;
            }

            if (parse.IsJson(output))
            {
                await context.Output.WriteLineAsync(Json(result)).ConfigureAwait(false);
            }
            else
            {
                // The order qemu-img prints in: the repairing pass's lines, the repair summary, the double
                // check's lines, then the counts.
                bool quiet = parse.GetValue(context.Quiet);
                if (result.RepairPass is { } repairPass)
                {
                    await WriteLinesAsync(context, repairPass).ConfigureAwait(false);
                    if (!quiet)
                    {
                        await context.Output.WriteAsync(RepairSummary(result)).ConfigureAwait(false);
                    }
                }

                await WriteLinesAsync(context, result.Report).ConfigureAwait(false);
                if (!quiet)
                {
                    await context.Output.WriteAsync(Summary(result)).ConfigureAwait(false);
                }
            }

            return result.ExitCode;
        });
        return command;
    }

    /// <summary>A report's findings and repairs on stderr, each repair after the findings made before it.</summary>
    private static async Task WriteLinesAsync(CliContext context, CheckReport report)
    {
        foreach (string line in Lines(report))
        {
            await context.Error.WriteLineAsync(line).ConfigureAwait(false);
        }
    }

    /// <summary>The lines a check prints as it goes, in qemu-img's words where the format has them.</summary>
    internal static IEnumerable<string> Lines(CheckReport report)
    {
        int repair = 0;
        for (int i = 0; i <= report.Findings.Count; i++)
        {
            for (; repair < report.Repairs.Count && report.Repairs[repair].FindingsBefore <= i; repair++)
            {
                yield return report.Repairs[repair].Message;
            }

            if (i < report.Findings.Count)
            {
                yield return FindingLine(report.Findings[i]);
            }
        }
    }

    internal static string FindingLine(CheckFinding f) => f.QemuLine ??
        $"{(f.Severity == CheckSeverity.Leak ? "Leaked" : "ERROR")} {f.Structure} at offset {f.OffsetBytes}: {f.Message}{(f.Repaired ? " (repaired)" : string.Empty)}";

    /// <summary>qemu-img check's text: the repair summary (after a repair) and then the counts.</summary>
    internal static string Human(CheckResult result) => RepairSummary(result) + Summary(result);

    /// <summary>What qemu-img prints on stdout between the repairing pass and the double check.</summary>
    internal static string RepairSummary(CheckResult result) => !result.Repaired ? string.Empty : string.Create(CultureInfo.InvariantCulture,
        $"The following inconsistencies were found and repaired:\n\n    {result.Report.LeaksFixed} leaked clusters\n    {result.Report.CorruptionsFixed} corruptions\n\nDouble checking the fixed image now...\n");

    /// <summary>qemu-img check's summary of the counts, word for word.</summary>
    internal static string Summary(CheckResult result)
    {
        CheckReport r = result.Report;
        var text = new StringBuilder();

        if (r.Corruptions == 0 && r.Leaks == 0 && r.CheckErrors == 0)
        {
            text.Append("No errors were found on the image.\n");
        }
        else
        {
            if (r.Corruptions > 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"\n{r.Corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n");
            }

            if (r.Leaks > 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"\n{r.Leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n");
            }

            if (r.CheckErrors > 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"\n{r.CheckErrors} internal errors have occurred during the check.\n");
            }
        }

        if (r.TotalClusters is > 0 && r.AllocatedClusters is { } allocated and > 0)
        {
            double total = r.TotalClusters.Value;
            text.Append(CultureInfo.InvariantCulture,
                $"{allocated}/{r.TotalClusters} = {Percent(allocated * 100.0 / total)}% allocated, {Percent((r.FragmentedClusters ?? 0) * 100.0 / allocated)}% fragmented, {Percent((r.CompressedClusters ?? 0) * 100.0 / allocated)}% compressed clusters\n");
        }

        if (r.ImageEndOffset is > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"Image end offset: {r.ImageEndOffset}\n");
        }

        return text.ToString();

        // qemu-img prints with printf's %.2f, which rounds an exact tie (2/64 = 3.125) to even; .NET's "0.00" rounds it away from zero.
        static string Percent(double value) => Math.Round(value, 2, MidpointRounding.ToEven).ToString("0.00", CultureInfo.InvariantCulture);
    }

    /// <summary>qemu-img's ImageCheck fields (zero counts left out, as qemu-img does), plus our findings.</summary>
    internal static string Json(CheckResult result) => JsonText.Build(w =>
    {
        CheckReport r = result.Report;
        w.WriteStartObject();
        w.WriteOptionalNumber("image-end-offset", NonZero(r.ImageEndOffset));
        w.WriteOptionalNumber("total-clusters", NonZero(r.TotalClusters));
        w.WriteNumber("check-errors", r.CheckErrors);
        w.WriteOptionalNumber("leaks", NonZero(r.Leaks));
        w.WriteOptionalNumber("leaks-fixed", NonZero(r.LeaksFixed));
        w.WriteOptionalNumber("corruptions", NonZero(r.Corruptions));
        w.WriteOptionalNumber("corruptions-fixed", NonZero(r.CorruptionsFixed));
        w.WriteOptionalNumber("allocated-clusters", NonZero(r.AllocatedClusters));
        w.WriteOptionalNumber("fragmented-clusters", NonZero(r.FragmentedClusters));
        w.WriteOptionalNumber("compressed-clusters", NonZero(r.CompressedClusters));
        w.WriteString("filename", result.FileName);
        w.WriteString("format", result.Format);
        if (r.Findings.Any(f => !f.Restated))
        {
            w.WriteStartArray("findings");
            foreach (CheckFinding f in r.Findings.Where(f => !f.Restated))
            {
                w.WriteStartObject();
                w.WriteString("severity", f.Severity switch { CheckSeverity.Leak => "leak", CheckSeverity.Corruption => "corruption", _ => "check-error" });
                w.WriteString("structure", f.Structure);
                w.WriteNumber("offset", f.OffsetBytes);
                w.WriteString("message", f.Message);
                w.WriteBoolean("repaired", f.Repaired);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        // What the repair changed, in the order it changed it (qemu-img prints these lines on stderr).
        IReadOnlyList<CheckRepairAction> repairs = result.RepairPass?.Repairs ?? r.Repairs;
        if (repairs.Count > 0)
        {
            w.WriteStartArray("repairs");
            foreach (CheckRepairAction action in repairs)
            {
                w.WriteStartObject();
                w.WriteString("structure", action.Structure);
                w.WriteNumber("offset", action.OffsetBytes);
                w.WriteString("message", action.Message);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        w.WriteEndObject();
    });

    private static long? NonZero(long? value) => value is 0 ? null : value;
}

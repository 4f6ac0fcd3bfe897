using System.CommandLine;
using System.Globalization;
using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Check;

namespace ImgTool.Cli.Commands;

/// <summary>check [-f fmt] [--output=ofmt] [-r leaks|all] [-U] filename. Exit 0 clean, 1 not completed, 2 corrupt, 3 leaks, 63 unsupported.</summary>
internal static class CheckCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var output = CommonOptions.Output();
        var repair = new Option<string?>("-r") { Description = "Repair: leaks, or all", HelpName = "leaks|all" }.AcceptOnlyFromAmong("leaks", "all");
        var forceShare = CommonOptions.ForceShare();
        var file = new Argument<string>("filename");
        var command = new Command("check", "Check an image's metadata for consistency") { format, output, repair, forceShare, file };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            CheckRepair mode = parse.GetValue(repair) switch
            {
                "leaks" => CheckRepair.Leaks,
                "all" => CheckRepair.All,
                _ => CheckRepair.None,
            };
            CheckResult result = await new CheckOperation(context.Opener).RunAsync(
                new CheckOptions(parse.GetValue(file)!, parse.GetValue(format), mode, parse.GetValue(forceShare)),
                cancellationToken).ConfigureAwait(false);
            if (!result.Supported)
            {
                // qemu-img's wording and exit code (63) for a format without checks.
                await context.Error.WriteLineAsync("imgtool: This image format does not support checks").ConfigureAwait(false);
                return result.ExitCode;
            }

            if (parse.IsJson(output))
            {
                await context.Output.WriteLineAsync(Json(result)).ConfigureAwait(false);
            }
            else
            {
                foreach (CheckFinding finding in result.Report.Findings)
                {
                    await context.Error.WriteLineAsync(FindingLine(finding)).ConfigureAwait(false);
                }

                if (!parse.GetValue(context.Quiet))
                {
                    await context.Output.WriteAsync(Human(result)).ConfigureAwait(false);
                }
            }

            return result.ExitCode;
        });
        return command;
    }

    internal static string FindingLine(CheckFinding f) =>
        $"{(f.Severity == CheckSeverity.Leak ? "Leaked" : "ERROR")} {f.Structure} at offset {f.OffsetBytes}: {f.Message}{(f.Repaired ? " (repaired)" : string.Empty)}";

    /// <summary>qemu-img check's summary text, word for word.</summary>
    internal static string Human(CheckResult result)
    {
        CheckReport r = result.Report;
        var text = new StringBuilder();
        if (result.Repaired)
        {
            text.Append(CultureInfo.InvariantCulture, $"The following inconsistencies were found and repaired:\n\n    {r.LeaksFixed} leaked clusters\n    {r.CorruptionsFixed} corruptions\n\nDouble checking the fixed image now...\n");
        }

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
        if (r.Findings.Count > 0)
        {
            w.WriteStartArray("findings");
            foreach (CheckFinding f in r.Findings)
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

        w.WriteEndObject();
    });

    private static long? NonZero(long? value) => value is 0 ? null : value;
}

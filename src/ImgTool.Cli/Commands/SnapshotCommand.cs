using System.CommandLine;
using System.Globalization;
using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Options;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Snapshot;

namespace ImgTool.Cli.Commands;

/// <summary>snapshot [-f fmt] [-U] [--output=human|json] [-l | -a snapshot | -c snapshot | -d snapshot] filename</summary>
internal static class SnapshotCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var forceShare = CommonOptions.ForceShare();
        var list = new Option<bool>("-l") { Description = "List the snapshots" };
        var apply = new Option<string?>("-a") { Description = "Revert the disk to a snapshot", HelpName = "snapshot" };
        var create = new Option<string?>("-c") { Description = "Create a snapshot", HelpName = "snapshot" };
        var delete = new Option<string?>("-d") { Description = "Delete a snapshot", HelpName = "snapshot" };
        // --output is an option of the command, not of -l, so it parses in any order (-l --output json X,
        // --output json -l X); qemu-img's JSON for the list is info's "snapshots" array.
        var output = new Option<string>("--output") { Description = "Output format of -l (json: the array qemu-img info --output=json has as \"snapshots\")", DefaultValueFactory = _ => "human", HelpName = "human|json" }
            .AcceptOnlyFromAmong("human", "json");
        var file = new Argument<string>("filename");
        var command = new Command("snapshot", "List, create, apply or delete internal snapshots") { format, forceShare, list, apply, create, delete, output, file };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            var chosen = new List<(SnapshotAction Action, string? Name)>();
            if (parse.GetValue(list))
            {
                chosen.Add((SnapshotAction.List, null));
            }

            if (parse.GetValue(apply) is { } a)
            {
                chosen.Add((SnapshotAction.Apply, a));
            }

            if (parse.GetValue(create) is { } c)
            {
                chosen.Add((SnapshotAction.Create, c));
            }

            if (parse.GetValue(delete) is { } d)
            {
                chosen.Add((SnapshotAction.Delete, d));
            }

            if (chosen.Count > 1)
            {
                throw new InvalidOptionException("cannot mix '-l', '-a', '-c', '-d'");
            }

            (SnapshotAction action, string? name) = chosen.Count == 0 ? (SnapshotAction.List, null) : chosen[0];
            bool json = parse.IsJson(output);
            if (json && action != SnapshotAction.List)
            {
                throw new InvalidOptionException("--output applies only to -l");
            }

            SnapshotResult result = await new SnapshotOperation(context.Opener, TimeProvider.System).RunAsync(
                new SnapshotOptions(parse.GetValue(file)!, action, name, parse.GetValue(format), parse.GetValue(forceShare)),
                cancellationToken).ConfigureAwait(false);
            if (json)
            {
                await context.Output.WriteLineAsync(JsonText.Build(w => InfoCommand.WriteSnapshots(w, result.Snapshots, name: null))).ConfigureAwait(false);
            }
            else if (action == SnapshotAction.List && result.Snapshots.Count > 0)
            {
                await context.Output.WriteAsync(Human(result.Snapshots, TimeZoneInfo.Local)).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }

    /// <summary>qemu-img snapshot -l's table (QEMU's bdrv_snapshot_dump), column for column.</summary>
    internal static string Human(IReadOnlyList<SnapshotInfo> snapshots, TimeZoneInfo zone)
    {
        var text = new StringBuilder("Snapshot list:\n");
        text.Append(CultureInfo.InvariantCulture, $"{"ID",-10}{"TAG",-17}{"VM SIZE",8}{"DATE",20}{"VM CLOCK",13}{"ICOUNT",11}\n");
        foreach (SnapshotInfo s in snapshots)
        {
            DateTime local = TimeZoneInfo.ConvertTime(s.Date, zone).DateTime;
            long ms = s.VmClockNanoseconds / 1_000_000;
            string clock = string.Create(CultureInfo.InvariantCulture, $"{ms / 3_600_000:00}:{ms / 60_000 % 60:00}:{ms / 1000 % 60:00}.{ms % 1000:000}");
            string icount = s.Icount is { } n ? n.ToString(CultureInfo.InvariantCulture) : string.Empty;
            text.Append(CultureInfo.InvariantCulture,
                $"{s.Id,-9} {s.Name,-16} {SizeParser.Format(s.VmStateSizeBytes),8}{local.ToString(" yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),20}{" " + clock,13}{icount,11}\n");
        }

        return text.ToString();
    }
}

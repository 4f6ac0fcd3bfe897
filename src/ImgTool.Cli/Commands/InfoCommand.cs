using System.CommandLine;
using System.Text;
using System.Text.Json;
using ImgTool.Block.Devices;
using ImgTool.Block.Options;
using ImgTool.Cli.Rendering;
using ImgTool.Operations.Info;

namespace ImgTool.Cli.Commands;

/// <summary>info [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename</summary>
internal static class InfoCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var output = CommonOptions.Output();
        var chain = new Option<bool>("--backing-chain") { Description = "Show every image of the backing chain" };
        var forceShare = CommonOptions.ForceShare();
        var preset = CommonOptions.Preset();
        var file = new Argument<string>("filename");
        var command = new Command("info", "Show information about an image") { format, output, chain, forceShare, preset, file };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            bool backingChain = parse.GetValue(chain);
            InfoResult result = await new InfoOperation(context.Opener).RunAsync(
                new InfoOptions(parse.GetValue(file)!, parse.GetValue(format), backingChain, parse.GetValue(forceShare), parse.GetValue(preset)),
                cancellationToken).ConfigureAwait(false);
            string text = parse.IsJson(output) ? Json(result, backingChain) : Human(result);
            await context.Output.WriteLineAsync(text).ConfigureAwait(false);
            if (!parse.IsJson(output))
            {
                foreach (string problem in result.PresetProblems ?? [])
                {
                    await context.Error.WriteLineAsync($"imgtool: warning: {result.Images[0].FileName}: {problem}").ConfigureAwait(false);
                }
            }

            return 0;
        });
        return command;
    }

    internal static string Human(InfoResult result)
    {
        var text = new StringBuilder();
        foreach (ImageInfo image in result.Images)
        {
            if (text.Length > 0)
            {
                text.Append('\n');
            }

            text.Append("image: ").Append(image.FileName).Append('\n');
            text.Append("file format: ").Append(image.Format).Append('\n');
            text.Append("virtual size: ").Append(SizeParser.Format(image.VirtualSizeBytes)).Append(" (").Append(image.VirtualSizeBytes).Append(" bytes)\n");
            text.Append("disk size: ").Append(SizeParser.Format(image.ActualSizeBytes)).Append('\n');
            if (image.Encrypted)
            {
                text.Append("encrypted: yes\n");
            }

            if (image.ClusterSizeBytes is { } cluster)
            {
                text.Append("cluster_size: ").Append(cluster).Append('\n');
            }

            if (image.BackingFileName is { } backing)
            {
                text.Append("backing file: ").Append(backing);
                if (image.FullBackingFileName != backing)
                {
                    text.Append(" (actual path: ").Append(image.FullBackingFileName).Append(')');
                }

                text.Append('\n');
                if (image.BackingFormat is { } backingFormat)
                {
                    text.Append("backing file format: ").Append(backingFormat).Append('\n');
                }
            }

            if (image.DirtyFlag)
            {
                text.Append("cleanly shut down: no\n");
            }

            if (image.Snapshots is { } snapshots)
            {
                text.Append(SnapshotCommand.Human(snapshots, TimeZoneInfo.Local));
            }

            if (image.FormatSpecific is { } specific)
            {
                text.Append("Format specific information:\n");
                HumanText.AppendValue(text, specific, 4);
            }
        }

        return text.ToString().TrimEnd('\n');
    }

    internal static string Json(InfoResult result, bool asArray) => JsonText.Build(w =>
    {
        if (asArray)
        {
            w.WriteStartArray();
        }

        foreach (ImageInfo image in asArray ? result.Images : result.Images.Take(1))
        {
            w.WriteStartObject();

            // qemu-img's key order (its QDict's bucket order): the backing format comes first.
            w.WriteOptionalString("backing-filename-format", image.BackingFormat);
            if (image.Snapshots is { } snapshots)
            {
                WriteSnapshots(w, snapshots);
            }

            w.WriteNumber("virtual-size", image.VirtualSizeBytes);
            w.WriteString("filename", image.FileName);
            w.WriteOptionalNumber("cluster-size", image.ClusterSizeBytes);
            w.WriteString("format", image.Format);
            w.WriteNumber("actual-size", image.ActualSizeBytes);

            if (image.FormatSpecific is { } specific)
            {
                w.WriteStartObject("format-specific");
                w.WriteString("type", image.FormatSpecificType ?? image.Format);
                w.WritePropertyName("data");
                JsonText.WriteValue(w, specific);
                w.WriteEndObject();
            }

            if (image.Encrypted)
            {
                // qemu-img prints it after format-specific.
                w.WriteBoolean("encrypted", true);
            }

            w.WriteOptionalString("full-backing-filename", image.FullBackingFileName);
            w.WriteOptionalString("backing-filename", image.BackingFileName);
            if (image.ReportsDirtyFlag)
            {
                w.WriteBoolean("dirty-flag", image.DirtyFlag);
            }

            if (image == result.Images[0] && result.Preset is not null)
            {
                // Not in qemu-img: what the platform named by --preset would refuse.
                w.WriteStartObject("preset");
                w.WriteString("name", result.Preset);
                w.WriteBoolean("accepted", result.PresetProblems is not { Count: > 0 });
                w.WriteStartArray("problems");
                foreach (string problem in result.PresetProblems ?? [])
                {
                    w.WriteStringValue(problem);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        if (asArray)
        {
            w.WriteEndArray();
        }
    });

    /// <summary>qemu-img's "snapshots" array (QAPI SnapshotInfo), keys in the order qemu-img prints them; with no
    /// <paramref name="name"/>, the bare array (snapshot -l --output json).</summary>
    internal static void WriteSnapshots(Utf8JsonWriter w, IReadOnlyList<SnapshotInfo> snapshots, string? name = "snapshots")
    {
        if (name is null)
        {
            w.WriteStartArray();
        }
        else
        {
            w.WriteStartArray(name);
        }

        foreach (SnapshotInfo s in snapshots)
        {
            w.WriteStartObject();
            w.WriteOptionalNumber("icount", s.Icount);
            w.WriteNumber("vm-clock-nsec", s.VmClockNanoseconds % 1_000_000_000);
            w.WriteString("name", s.Name);
            long ticks = (s.Date - DateTimeOffset.UnixEpoch).Ticks;
            w.WriteNumber("date-sec", Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long rest));
            w.WriteNumber("date-nsec", rest * 100);
            w.WriteNumber("vm-clock-sec", s.VmClockNanoseconds / 1_000_000_000);
            w.WriteString("id", s.Id);
            w.WriteNumber("vm-state-size", s.VmStateSizeBytes);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }
}

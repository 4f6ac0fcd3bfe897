using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ImgTool.Block.Options;
using ImgTool.Cli.Rendering;
using ImgTool.Inspect.Bootloaders;
using ImgTool.Inspect.Filesystems;
using ImgTool.Inspect.Inspection;
using ImgTool.Inspect.OsRelease;
using ImgTool.Inspect.Partitions;

namespace ImgTool.Cli.Commands;

/// <summary>inspect [-f fmt] [--output human|json] [-U] filename: partitions, file systems, boot loaders, OS.</summary>
internal static class InspectCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var output = CommonOptions.Output();
        var forceShare = CommonOptions.ForceShare();
        var file = new Argument<string>("filename");
        var command = new Command("inspect", "Show the partitions, file systems, boot loaders and operating system inside an image") { format, output, forceShare, file };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            InspectResult result = await new InspectOperation(context.Opener).RunAsync(
                new InspectOptions(parse.GetValue(file)!, parse.GetValue(format), parse.GetValue(forceShare)), cancellationToken).ConfigureAwait(false);
            await context.Output.WriteAsync(parse.IsJson(output) ? Json(result) + "\n" : Human(result)).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    internal static string Human(InspectResult r)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"image: {r.FileName}\nfile format: {r.Format}\nvirtual size: {SizeParser.Format(r.VirtualSizeBytes)} ({r.VirtualSizeBytes} bytes)\n");
        if (r.Table is { } t)
        {
            text.Append(CultureInfo.InvariantCulture, $"partition table: {t.Label}, id {t.Id}");
            if (t.FirstLba is { } first)
            {
                text.Append(CultureInfo.InvariantCulture, $", usable sectors {first}-{t.LastLba}");
            }

            text.Append(t.HybridMbr ? ", hybrid MBR\n" : "\n");
            if (t.Primary is { } p && t.Backup is { } b)
            {
                text.Append(CultureInfo.InvariantCulture, $"GPT headers: primary (LBA {p.Lba}) {(p.Valid ? "ok" : "corrupt")}, backup (LBA {b.Lba}) {(b.Valid ? "ok" : "corrupt")}{(t.UsedBackup ? "; using the backup" : string.Empty)}\n");
            }
        }
        else
        {
            text.Append("partition table: none\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"{"Part",-5}{"Start",12}{"Sectors",12} {"Size",-10} {"Type",-22} {"Filesystem",-12} {"Label",-16} UUID\n");
        foreach (Volume v in r.Volumes)
        {
            Partition? part = v.Partition;
            string number = part is null ? "-" : part.Number.ToString(CultureInfo.InvariantCulture) + (part.Bootable ? "*" : string.Empty);
            string type = part is null ? "(whole disk)" : part.TypeName;
            string fs = v.Filesystem is { } f ? f.Type + (f.Version is { } ver && f.Type == "vfat" ? $" ({ver})" : string.Empty) : v.Error is null ? "-" : "error";
            text.Append(CultureInfo.InvariantCulture, $"{number,-5}{v.StartBytes / 512,12}{v.SizeBytes / 512,12} {SizeParser.Format(v.SizeBytes),-10} {Truncate(type, 22),-22} {fs,-12} {v.Filesystem?.Label ?? "-",-16} {v.Filesystem?.Uuid ?? "-"}\n");
            if (v.Error is { } error)
            {
                text.Append(CultureInfo.InvariantCulture, $"     {error}\n");
            }

            foreach (var (key, value) in v.Filesystem?.Details ?? [])
            {
                text.Append(CultureInfo.InvariantCulture, $"     {key}: {value}\n");
            }
        }

        foreach (BootloaderInfo loader in r.Bootloaders)
        {
            text.Append(CultureInfo.InvariantCulture, $"boot loader: {loader.Name} ({loader.Location}){(loader.ConfigPath is { } c ? $", config {c}" : string.Empty)}\n");
        }

        if (r.Bootloaders.Count == 0)
        {
            text.Append("boot loader: none found\n");
        }

        foreach (OsHint os in r.OperatingSystems)
        {
            text.Append(CultureInfo.InvariantCulture, $"operating system: {os.PrettyName ?? os.Name ?? os.Id} (partition {os.Partition?.ToString(CultureInfo.InvariantCulture) ?? "-"}, {os.Source})\n");
        }

        foreach (string warning in r.Warnings)
        {
            text.Append("warning: ").Append(warning).Append('\n');
        }

        return text.ToString();
    }

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length];

    internal static string Json(InspectResult r) => JsonText.Build(w =>
    {
        w.WriteStartObject();
        w.WriteString("filename", r.FileName);
        w.WriteString("format", r.Format);
        w.WriteNumber("virtual-size", r.VirtualSizeBytes);
        if (r.Table is { } t)
        {
            w.WriteStartObject("partition-table");
            w.WriteString("label", t.Label);
            w.WriteString("id", t.Id);
            w.WriteNumber("sector-size", Partition.SectorBytes);
            w.WriteOptionalNumber("first-lba", t.FirstLba);
            w.WriteOptionalNumber("last-lba", t.LastLba);
            if (t.Label == "gpt")
            {
                w.WriteBoolean("hybrid-mbr", t.HybridMbr);
                w.WriteBoolean("used-backup", t.UsedBackup);
                Header(w, "primary-header", t.Primary);
                Header(w, "backup-header", t.Backup);
            }

            w.WriteEndObject();
        }

        w.WriteStartArray("volumes");
        foreach (Volume v in r.Volumes)
        {
            w.WriteStartObject();
            if (v.Partition is { } p)
            {
                w.WriteNumber("number", p.Number);
                w.WriteNumber("start", p.StartSector);
                w.WriteNumber("size", p.SectorCount);
                w.WriteString("type", p.Type);
                w.WriteString("type-name", p.TypeName);
                w.WriteOptionalString("uuid", p.Uuid);
                w.WriteOptionalString("name", p.Name);
                if (p.Bootable)
                {
                    w.WriteBoolean("bootable", true);
                }

                if (p.IsContainer)
                {
                    w.WriteBoolean("extended", true);
                }

                w.WriteOptionalString("problem", p.Problem);
            }

            w.WriteNumber("offset-bytes", v.StartBytes);
            w.WriteNumber("size-bytes", v.SizeBytes);
            if (v.Filesystem is { } f)
            {
                Filesystem(w, f);
            }

            w.WriteOptionalString("error", v.Error);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("bootloaders");
        foreach (BootloaderInfo b in r.Bootloaders)
        {
            w.WriteStartObject();
            w.WriteString("name", b.Name);
            w.WriteString("location", b.Location);
            w.WriteOptionalString("config", b.ConfigPath);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("operating-systems");
        foreach (OsHint os in r.OperatingSystems)
        {
            w.WriteStartObject();
            if (os.Partition is { } n)
            {
                w.WriteNumber("partition", n);
            }

            w.WriteString("source", os.Source);
            w.WriteOptionalString("id", os.Id);
            w.WriteOptionalString("name", os.Name);
            w.WriteOptionalString("version-id", os.VersionId);
            w.WriteOptionalString("pretty-name", os.PrettyName);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("warnings");
        foreach (string warning in r.Warnings)
        {
            w.WriteStringValue(warning);
        }

        w.WriteEndArray();
        w.WriteEndObject();
    });

    private static void Header(Utf8JsonWriter w, string name, GptHeaderState? state)
    {
        if (state is null)
        {
            return;
        }

        w.WriteStartObject(name);
        w.WriteNumber("lba", state.Lba);
        w.WriteBoolean("valid", state.Valid);
        w.WriteOptionalString("problem", state.Problem);
        w.WriteEndObject();
    }

    /// <summary>The file system as blkid's fields, in lower case: type, usage, label, uuid, uuid-sub, version, block-size.</summary>
    private static void Filesystem(Utf8JsonWriter w, FilesystemInfo f)
    {
        w.WriteStartObject("filesystem");
        w.WriteString("type", f.Type);
        w.WriteString("usage", f.Usage);
        w.WriteOptionalString("label", f.Label);
        w.WriteOptionalString("uuid", f.Uuid);
        w.WriteOptionalString("uuid-sub", f.UuidSub);
        w.WriteOptionalString("version", f.Version);
        w.WriteOptionalNumber("block-size", f.BlockSize);
        w.WriteOptionalNumber("size", f.SizeBytes);
        foreach (var (key, value) in f.Details ?? [])
        {
            w.WriteString(key, value);
        }

        w.WriteEndObject();
    }
}

using System.CommandLine;
using System.Globalization;
using System.Text;
using ImgTool.Cli.Rendering;
using ImgTool.Inspect.Files;
using ImgTool.Inspect.GuestFiles;

namespace ImgTool.Cli.Commands;

/// <summary>ls [-l] [-f fmt] [--output human|json] [-U] IMAGE[:PARTITION]:/PATH</summary>
internal static class LsCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var output = CommonOptions.Output();
        var forceShare = CommonOptions.ForceShare();
        var longFormat = new Option<bool>("-l") { Description = "Long listing: mode, links, owner, group, size, time" };
        var target = new Argument<string>("target") { Description = "IMAGE[:PARTITION]:/PATH" };
        var command = new Command("ls", "List a directory inside an image (ext2/3/4, FAT), without mounting it") { longFormat, format, output, forceShare, target };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            ListResult result = await new ListOperation(context.Opener).RunAsync(
                new GuestFileOptions(parse.GetValue(target)!, parse.GetValue(format), parse.GetValue(forceShare)), cancellationToken).ConfigureAwait(false);
            await context.Output.WriteAsync(parse.IsJson(output) ? Json(result) + "\n" : Human(result, parse.GetValue(longFormat))).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    internal static string Human(ListResult result, bool longFormat)
    {
        var text = new StringBuilder();
        foreach (ListedEntry listed in result.Entries)
        {
            GuestEntry e = listed.Entry;
            if (longFormat)
            {
                string time = e.ModifiedTime?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "-";
                text.Append(CultureInfo.InvariantCulture, $"{PosixMode.Describe(e.Mode)} {e.LinkCount,3} {e.Uid,5} {e.Gid,5} {e.SizeBytes,12} {time} {e.Name}");
                if (listed.LinkTarget is { } link)
                {
                    text.Append(" -> ").Append(link);
                }
            }
            else
            {
                text.Append(e.Name);
            }

            text.Append('\n');
        }

        return text.ToString();
    }

    internal static string Json(ListResult result) => JsonText.Build(w =>
    {
        w.WriteStartArray();
        foreach (ListedEntry listed in result.Entries)
        {
            GuestEntry e = listed.Entry;
            w.WriteStartObject();
            w.WriteString("name", e.Name);
            w.WriteString("type", e.Kind switch { GuestFileKind.File => "file", GuestFileKind.Directory => "directory", GuestFileKind.Symlink => "symlink", _ => "other" });
            w.WriteNumber("size", e.SizeBytes);
            w.WriteString("mode", Convert.ToString(e.Mode, 8));
            w.WriteNumber("links", e.LinkCount);
            w.WriteNumber("uid", e.Uid);
            w.WriteNumber("gid", e.Gid);
            w.WriteNumber("inode", e.Id);
            if (e.ModifiedTime is { } time)
            {
                w.WriteString("mtime", time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
            }

            w.WriteOptionalString("target", listed.LinkTarget);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    });
}

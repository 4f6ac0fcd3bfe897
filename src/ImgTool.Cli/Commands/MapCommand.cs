using System.CommandLine;
using System.Globalization;
using System.Text;
using ImgTool.Block.Options;
using ImgTool.Operations.Map;

namespace ImgTool.Cli.Commands;

/// <summary>map [-f fmt] [--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] filename</summary>
internal static class MapCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var output = CommonOptions.Output();
        var start = new Option<string?>("--start-offset", "-s") { Description = "First byte to map", HelpName = "offset" };
        var maxLength = new Option<string?>("--max-length", "-l") { Description = "Bytes to map at most", HelpName = "len" };
        var forceShare = CommonOptions.ForceShare();
        var file = new Argument<string>("filename");
        var command = new Command("map", "Show how the image's data is laid out") { format, output, start, maxLength, forceShare, file };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            var options = new MapOptions(
                parse.GetValue(file)!,
                parse.GetValue(format),
                parse.GetValue(start) is { } s ? SizeParser.Parse(s, "start offset") : 0,
                parse.GetValue(maxLength) is { } l ? SizeParser.Parse(l, "length") : null,
                parse.GetValue(forceShare));
            MapResult result = await new MapOperation(context.Opener).RunAsync(options, cancellationToken).ConfigureAwait(false);
            await context.Output.WriteAsync(parse.IsJson(output) ? Json(result) : Human(result)).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    /// <summary>qemu-img's human map: only ranges holding data, with where they are stored.</summary>
    internal static string Human(MapResult result)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{"Offset",-16}{"Length",-16}{"Mapped to",-16}File\n");
        foreach (MapEntry e in result.Entries.Where(e => e.Data && e.OffsetBytes is not null))
        {
            text.Append(CultureInfo.InvariantCulture, $"{Hex(e.StartBytes),-16}{Hex(e.LengthBytes),-16}{Hex(e.OffsetBytes!.Value),-16}{e.FileName}\n");
        }

        return text.ToString();
    }

    /// <summary>qemu-img's JSON map: one object per line, in its exact spacing.</summary>
    internal static string Json(MapResult result)
    {
        var text = new StringBuilder("[");
        for (int i = 0; i < result.Entries.Count; i++)
        {
            MapEntry e = result.Entries[i];
            if (i > 0)
            {
                text.Append(",\n");
            }

            text.Append(CultureInfo.InvariantCulture, $"{{ \"start\": {e.StartBytes}, \"length\": {e.LengthBytes}, \"depth\": {e.Depth}, \"present\": {Bool(e.Present)}, \"zero\": {Bool(e.Zero)}, \"data\": {Bool(e.Data)}");
            if (e.OffsetBytes is { } offset)
            {
                text.Append(CultureInfo.InvariantCulture, $", \"offset\": {offset}");
            }

            text.Append('}');
        }

        return text.Append("]\n").ToString();
    }

    // C's %#x: "0" for zero, "0x..." otherwise.
    private static string Hex(long value) => value == 0 ? "0" : $"0x{value:x}";

    private static string Bool(bool value) => value ? "true" : "false";
}

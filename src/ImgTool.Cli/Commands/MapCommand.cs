using System.CommandLine;
using System.Globalization;
using System.Text;
using ImgTool.Block.Errors;
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
            if (parse.IsJson(output))
            {
                await context.Output.WriteAsync(Json(result)).ConfigureAwait(false);
                return 0;
            }

            // As qemu-img: what precedes data without a host offset is printed, then the map fails.
            string text = Human(result, out bool complete);
            await context.Output.WriteAsync(text).ConfigureAwait(false);
            return complete ? 0 : throw new UnsupportedFeatureException("File contains external, encrypted or compressed clusters.");
        });
        return command;
    }

    /// <summary>qemu-img's human map: only ranges holding data (not data that reads as zeros), with where they are stored.</summary>
    /// <param name="complete">False when data without a host offset (compressed, encrypted) stopped the listing there.</param>
    internal static string Human(MapResult result, out bool complete)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{"Offset",-16}{"Length",-16}{"Mapped to",-16}File\n");
        complete = true;
        foreach (MapEntry e in result.Entries.Where(e => e.Data))
        {
            if (e.OffsetBytes is not { } offset)
            {
                complete = false;
                break;
            }

            if (!e.Zero)
            {
                text.Append(CultureInfo.InvariantCulture, $"{Hex(e.StartBytes),-16}{Hex(e.LengthBytes),-16}{Hex(offset),-16}{e.FileName}\n");
            }
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

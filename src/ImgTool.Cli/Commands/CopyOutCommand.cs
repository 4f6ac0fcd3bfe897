using System.CommandLine;
using System.Globalization;
using ImgTool.Cli.Rendering;
using ImgTool.Inspect.GuestFiles;

namespace ImgTool.Cli.Commands;

/// <summary>copy-out [-f fmt] [-U] IMAGE[:PARTITION]:/PATH DEST: a file or directory tree copied to the host.</summary>
internal static class CopyOutCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var output = CommonOptions.Output();
        var forceShare = CommonOptions.ForceShare();
        var target = new Argument<string>("target") { Description = "IMAGE[:PARTITION]:/PATH" };
        var destination = new Argument<string>("destination") { Description = "A new file or folder name, or an existing folder to copy into" };
        var command = new Command("copy-out", "Copy a file or directory out of an image (ext2/3/4, FAT), without mounting it") { format, output, forceShare, target, destination };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            CopyOutResult result = await new CopyOutOperation(context.Opener).RunAsync(
                new GuestFileOptions(parse.GetValue(target)!, parse.GetValue(format), parse.GetValue(forceShare)), parse.GetValue(destination)!, cancellationToken).ConfigureAwait(false);
            if (parse.IsJson(output))
            {
                await context.Output.WriteLineAsync(JsonText.Build(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("destination", result.Destination);
                    w.WriteNumber("files", result.Files);
                    w.WriteNumber("directories", result.Directories);
                    w.WriteNumber("symlinks", result.Symlinks);
                    w.WriteNumber("bytes", result.Bytes);
                    w.WriteEndObject();
                })).ConfigureAwait(false);
            }
            else if (!parse.GetValue(context.Quiet))
            {
                await context.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"Copied {result.Files} files, {result.Directories} directories, {result.Symlinks} symlinks ({result.Bytes} bytes) to {result.Destination}")).ConfigureAwait(false);
            }

            return 0;
        });
        return command;
    }
}

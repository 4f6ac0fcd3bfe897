using System.CommandLine;
using ImgTool.Inspect.GuestFiles;

namespace ImgTool.Cli.Commands;

/// <summary>cat [-f fmt] [-U] IMAGE[:PARTITION]:/PATH: a file's bytes on stdout.</summary>
internal static class CatCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var forceShare = CommonOptions.ForceShare();
        var target = new Argument<string>("target") { Description = "IMAGE[:PARTITION]:/PATH" };
        var command = new Command("cat", "Print a file inside an image (ext2/3/4, FAT), without mounting it") { format, forceShare, target };
        command.SetAction(context, async (parse, cancellationToken) =>
        {
            await context.Output.FlushAsync(cancellationToken).ConfigureAwait(false);
            Stream output = context.BinaryOutput ?? Console.OpenStandardOutput();
            await new CatOperation(context.Opener).RunAsync(
                new GuestFileOptions(parse.GetValue(target)!, parse.GetValue(format), parse.GetValue(forceShare)), output, cancellationToken).ConfigureAwait(false);
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            return 0;
        });
        return command;
    }
}

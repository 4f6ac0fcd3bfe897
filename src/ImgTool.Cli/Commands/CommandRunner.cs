using System.CommandLine;
using ImgTool.Block.Errors;

namespace ImgTool.Cli.Commands;

/// <summary>Runs a command's body and turns failures into one line on stderr and an exit code.</summary>
internal static class CommandRunner
{
    public static void SetAction(this Command command, CliContext context, Func<ParseResult, CancellationToken, Task<int>> body, int errorExitCode = 1) =>
        command.SetAction(async (parse, cancellationToken) =>
        {
            bool debug = parse.GetValue(context.Debug);
            try
            {
                return await body(parse, cancellationToken).ConfigureAwait(false);
            }
            catch (ImgToolException e)
            {
                await ReportAsync(context, e.FileName is null ? e.Message : $"{e.FileName}: {e.Message}", e, debug).ConfigureAwait(false);
                return errorExitCode;
            }
            catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
            {
                await ReportAsync(context, "interrupted", e, debug).ConfigureAwait(false);
                return 130;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await ReportAsync(context, e.Message, e, debug).ConfigureAwait(false);
                return errorExitCode;
            }
            catch (Exception e)
            {
                // A bug, not bad input: still one line unless --debug asks for more.
                await ReportAsync(context, $"internal error: {e.GetType().Name}: {e.Message} (run with --debug for details)", e, debug).ConfigureAwait(false);
                return errorExitCode;
            }
        });

    private static async Task ReportAsync(CliContext context, string message, Exception exception, bool debug)
    {
        await context.Error.WriteLineAsync($"imgtool: {message}").ConfigureAwait(false);
        if (debug)
        {
            await context.Error.WriteLineAsync(exception.ToString()).ConfigureAwait(false);
        }
    }
}

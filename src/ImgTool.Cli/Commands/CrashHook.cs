using System.Globalization;

namespace ImgTool.Cli.Commands;

/// <summary>Hidden crash-test hooks: with IMGTOOL_&lt;COMMAND&gt;_CRASH_AFTER=N the process dies (Environment.FailFast)
/// right after the operation's Nth write, as a kill -9 would stop it there; tests then check the files.</summary>
internal static class CrashHook
{
    public const string CommitVariable = "IMGTOOL_COMMIT_CRASH_AFTER";
    public const string RebaseVariable = "IMGTOOL_REBASE_CRASH_AFTER";

    public static Action<int>? FromEnvironment(string variable)
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.None, CultureInfo.InvariantCulture, out int limit))
        {
            return null;
        }

        return count =>
        {
            if (count >= limit)
            {
                Environment.FailFast($"{variable}={limit}: stopping after write {count}");
            }
        };
    }
}

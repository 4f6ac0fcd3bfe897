using System.Text;
using ImgTool.Inspect.Files;

namespace ImgTool.Inspect.OsRelease;

/// <summary>Reads os-release(5): KEY=VALUE lines, values optionally quoted; /etc/os-release may be a symlink to
/// /usr/lib/os-release. Older systems only have /etc/debian_version or /etc/redhat-release.</summary>
public static class OsReleaseReader
{
    private const int MaxBytes = 64 * 1024;

    public static async ValueTask<OsHint?> ReadAsync(IGuestFileSystem fs, int? partition, CancellationToken cancellationToken)
    {
        foreach (string path in new[] { "/etc/os-release", "/usr/lib/os-release" })
        {
            if (await ReadTextAsync(fs, path, cancellationToken).ConfigureAwait(false) is { } text)
            {
                Dictionary<string, string> fields = Parse(text);
                return new OsHint(partition, path, fields.GetValueOrDefault("ID"), fields.GetValueOrDefault("NAME"),
                    fields.GetValueOrDefault("VERSION_ID"), fields.GetValueOrDefault("PRETTY_NAME"));
            }
        }

        if (await ReadTextAsync(fs, "/etc/debian_version", cancellationToken).ConfigureAwait(false) is { } debian)
        {
            string version = debian.Trim();
            return new OsHint(partition, "/etc/debian_version", "debian", "Debian GNU/Linux", version, $"Debian GNU/Linux {version}");
        }

        if (await ReadTextAsync(fs, "/etc/redhat-release", cancellationToken).ConfigureAwait(false) is { } redhat)
        {
            return new OsHint(partition, "/etc/redhat-release", null, null, null, redhat.Trim());
        }

        return null;
    }

    public static Dictionary<string, string> Parse(string text)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.Trim();
            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (line.StartsWith('#') || eq <= 0)
            {
                continue;
            }

            string value = line[(eq + 1)..].Trim();
            if (value.Length >= 2 && (value[0] == '"' || value[0] == '\'') && value[^1] == value[0])
            {
                value = value[1..^1].Replace("\\\"", "\"", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal);
            }

            fields[line[..eq]] = value;
        }

        return fields;
    }

    private static async ValueTask<string?> ReadTextAsync(IGuestFileSystem fs, string path, CancellationToken cancellationToken)
    {
        try
        {
            GuestEntry entry = await GuestPath.ResolveAsync(fs, path, true, cancellationToken).ConfigureAwait(false);
            if (entry.Kind != GuestFileKind.File)
            {
                return null;
            }

            byte[] buffer = new byte[Math.Min(entry.SizeBytes, MaxBytes)];
            int n = await fs.ReadAsync(entry, 0, buffer, cancellationToken).ConfigureAwait(false);
            return Encoding.UTF8.GetString(buffer, 0, n);
        }
        catch (Block.Errors.ImgToolException)
        {
            return null;
        }
    }
}

using System.Globalization;
using ImgTool.Block.Errors;

namespace ImgTool.Block.Options;

/// <summary>
/// Parsed `-o key=value,...` options, checked against a format's specs. Values keep the order the
/// user gave them; later values of the same key win, as in qemu-img.
/// </summary>
public sealed class ImageOptions
{
    private readonly List<KeyValuePair<string, string>> _values;

    private ImageOptions(List<KeyValuePair<string, string>> values) => _values = values;

    public static ImageOptions Empty { get; } = new([]);

    public IReadOnlyList<KeyValuePair<string, string>> Values => _values;

    /// <summary>True when any option string asks for `help` (or `?`), as qemu-img's -o help.</summary>
    public static bool IsHelpRequest(IEnumerable<string> optionStrings) =>
        optionStrings.SelectMany(Split).Any(kv => kv.Key is "help" or "?");

    /// <summary>Parses qemu's option syntax: comma-separated key=value pairs, ",," for a literal comma,
    /// a bare key meaning "on" for booleans.</summary>
    public static ImageOptions Parse(IEnumerable<string> optionStrings)
    {
        var values = new List<KeyValuePair<string, string>>();
        foreach (string text in optionStrings)
        {
            values.AddRange(Split(text));
        }

        return new ImageOptions(values);
    }

    public ImageOptions With(string key, string value) => new([.. _values, new(key, value)]);

    public bool Contains(string key) => _values.Any(kv => kv.Key == key);

    public string? GetString(string key) => _values.LastOrDefault(kv => kv.Key == key).Value;

    /// <summary>Rejects keys the specs do not name and values of the wrong kind.</summary>
    public void Validate(IReadOnlyList<ImageOptionSpec> specs, string formatName)
    {
        foreach (var (key, value) in _values)
        {
            ImageOptionSpec? spec = specs.FirstOrDefault(s => s.Name == key)
                ?? throw new InvalidOptionException($"invalid option '{key}' for format '{formatName}' (see -o help)");
            switch (spec.Kind)
            {
                case ImageOptionKind.Size:
                    SizeParser.Parse(value, $"value for {key}");
                    break;
                case ImageOptionKind.Bool:
                    ParseBool(key, value);
                    break;
                case ImageOptionKind.Number:
                    ParseNumber(key, value);
                    break;
                case ImageOptionKind.Choice when spec.Choices is { } choices && !choices.Contains(value):
                    throw new InvalidOptionException($"invalid value '{value}' for {key}: allowed values are {string.Join(", ", choices)}");
            }
        }
    }

    public long? GetSize(string key) => GetString(key) is { } v ? SizeParser.Parse(v, $"value for {key}") : null;

    public bool? GetBool(string key) => GetString(key) is { } v ? ParseBool(key, v) : null;

    public long? GetNumber(string key) => GetString(key) is { } v ? ParseNumber(key, v) : null;

    private static bool ParseBool(string key, string value) => value switch
    {
        "on" or "true" or "yes" => true,
        "off" or "false" or "no" => false,
        _ => throw new InvalidOptionException($"invalid value '{value}' for {key}: use on or off"),
    };

    private static long ParseNumber(string key, string value) =>
        long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long n)
            ? n
            : throw new InvalidOptionException($"invalid value '{value}' for {key}: expected a number");

    private static IEnumerable<KeyValuePair<string, string>> Split(string text)
    {
        var items = new List<KeyValuePair<string, string>>();
        var current = new System.Text.StringBuilder();
        for (int i = 0; i <= text.Length; i++)
        {
            if (i < text.Length && text[i] == ',' && i + 1 < text.Length && text[i + 1] == ',')
            {
                current.Append(',');
                i++;
                continue;
            }

            if (i == text.Length || text[i] == ',')
            {
                string item = current.ToString();
                current.Clear();
                if (item.Length == 0)
                {
                    continue;
                }

                int eq = item.IndexOf('=', StringComparison.Ordinal);
                items.Add(eq < 0 ? new(item, "on") : new(item[..eq], item[(eq + 1)..]));
                continue;
            }

            current.Append(text[i]);
        }

        return items;
    }
}

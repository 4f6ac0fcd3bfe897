using System.Globalization;
using ImgTool.Block.Errors;

namespace ImgTool.Block.Options;

/// <summary>Sizes as qemu-img takes them: a number with an optional 1024-based suffix
/// (b, k, M, G, T, P, E; case does not matter), fractions allowed with a suffix ("1.5G").</summary>
public static class SizeParser
{
    private const string Suffixes = "BKMGTPE";

    public static bool TryParse(string? text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        string s = text.Trim();
        int shift = 0;
        int suffix = Suffixes.IndexOf(char.ToUpperInvariant(s[^1]));
        if (suffix >= 0)
        {
            shift = suffix * 10;
            s = s[..^1];
        }

        if (s.Length == 0 || !char.IsAsciiDigit(s[0]))
        {
            return false; // rejects "-1", "+1", ".5", "abc"
        }

        if (!decimal.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal value))
        {
            return false;
        }

        if (shift == 0 && value != decimal.Truncate(value))
        {
            return false; // a fraction of a byte
        }

        decimal scaled = value * (1L << shift);
        if (scaled > long.MaxValue)
        {
            return false;
        }

        bytes = (long)decimal.Truncate(scaled);
        return true;
    }

    public static long Parse(string text, string what = "size")
    {
        if (!TryParse(text, out long bytes))
        {
            throw new InvalidOptionException(
                $"invalid {what} '{text}': use a non-negative number with an optional k, M, G, T, P or E suffix (1024-based)");
        }

        return bytes;
    }

    /// <summary>Human size as qemu-img prints it ("1 GiB", "0.977 MiB", "512 B"): three significant
    /// digits, switching to the next unit once the number would reach 1000 (QEMU's size_to_str).</summary>
    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        int unit = 0;
        if (bytes > 0)
        {
            int log2 = (int)Math.Floor(Math.Log2(bytes / (1000.0 / 1024.0)));
            unit = Math.Clamp(log2 / 10, 0, units.Length - 1);
        }

        double value = bytes / Math.Pow(2, unit * 10);
        return $"{value.ToString("G3", CultureInfo.InvariantCulture)} {units[unit]}";
    }
}

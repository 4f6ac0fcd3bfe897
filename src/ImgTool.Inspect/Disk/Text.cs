using System.Globalization;
using System.Text;

namespace ImgTool.Inspect.Disk;

/// <summary>How on-disk identifiers are spelled, the way blkid spells them.</summary>
internal static class Text
{
    /// <summary>A 16-byte UUID stored in byte order (ext, xfs, btrfs, swap): 8-4-4-4-12 lowercase hex.</summary>
    public static string? ByteOrderUuid(ReadOnlySpan<byte> bytes)
    {
        if (!bytes[..16].ContainsAnyExcept((byte)0))
        {
            return null;
        }

        string hex = Convert.ToHexStringLower(bytes[..16]);
        return $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..32]}";
    }

    /// <summary>A 32-bit volume serial (FAT, exFAT) as blkid shows it: XXXX-XXXX, most significant byte first.</summary>
    public static string Serial32(uint serial) =>
        string.Create(CultureInfo.InvariantCulture, $"{serial >> 16:X4}-{serial & 0xFFFF:X4}");

    /// <summary>A fixed-size field up to its first NUL, as ASCII/Latin-1 (labels of ext, xfs, swap).</summary>
    public static string? NulTerminated(ReadOnlySpan<byte> field, bool trimSpaces = false)
    {
        int end = field.IndexOf((byte)0);
        string text = Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
        if (trimSpaces)
        {
            text = text.TrimEnd(' ');
        }

        return text.Length == 0 ? null : text;
    }

    public static string? Utf16(ReadOnlySpan<byte> field, bool bigEndian = false)
    {
        string text = (bigEndian ? Encoding.BigEndianUnicode : Encoding.Unicode).GetString(field[..(field.Length & ~1)]);
        int end = text.IndexOf('\0', StringComparison.Ordinal);
        text = end < 0 ? text : text[..end];
        return text.Length == 0 ? null : text;
    }
}

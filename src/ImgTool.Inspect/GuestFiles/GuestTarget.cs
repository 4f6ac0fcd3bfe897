using System.Globalization;
using ImgTool.Block.Errors;

namespace ImgTool.Inspect.GuestFiles;

/// <summary>IMAGE[:PARTITION]:/PATH, the way ls, cat and copy-out name a file inside an image. The path starts at the
/// first ":/"; a ":N" before it names partition N (as sfdisk numbers them) unless a file of that whole name exists.</summary>
public sealed record GuestTarget(string ImageFileName, int? Partition, string Path)
{
    public static GuestTarget Parse(string text)
    {
        int split = text.IndexOf(":/", StringComparison.Ordinal);
        if (split <= 0)
        {
            throw new InvalidOptionException($"'{text}' names no path inside the image: use IMAGE:/PATH or IMAGE:PARTITION:/PATH");
        }

        string image = text[..split];
        string path = text[(split + 1)..];
        int colon = image.LastIndexOf(':');
        if (colon > 0 && int.TryParse(image[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int partition) && !File.Exists(image))
        {
            return new GuestTarget(image[..colon], partition, path);
        }

        return new GuestTarget(image, null, path);
    }
}

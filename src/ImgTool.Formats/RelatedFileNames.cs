namespace ImgTool.Formats;

/// <summary>
/// Names of other files that an image stores in itself (VMDK extents, a qcow2 external data file).
/// Such a name is data from the image: unless the user opts in (--allow-outside-extents), it may only
/// name a file inside the image's own folder, so a crafted image cannot make us open arbitrary files.
/// </summary>
public static class RelatedFileNames
{
    /// <summary>True when <paramref name="name"/> stays inside the folder of <paramref name="imagePath"/>
    /// (relative, or absolute naming a file in that folder; no ".." that leaves it; no NUL).</summary>
    public static bool IsConfined(string imagePath, string name)
    {
        if (name.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        string folder = Path.GetFullPath(Path.GetDirectoryName(Path.GetFullPath(imagePath)) ?? ".");
        string full = Path.GetFullPath(Path.Combine(folder, name));
        string prefix = folder.EndsWith(Path.DirectorySeparatorChar) ? folder : folder + Path.DirectorySeparatorChar;
        return full.StartsWith(prefix, StringComparison.Ordinal);
    }
}

using ImgTool.Block.Errors;

namespace ImgTool.Formats;

/// <summary>
/// The error for a backing file that cannot be opened, in one wording for every format and for create: it says that
/// the file is the backing file, and shows its name as resolved against the image's folder ("sub/../src.qcow2"), the
/// path that was actually tried, as qemu-img does ("Could not open backing file: Could not open 'sub/../src.qcow2'").
/// </summary>
internal static class BackingFileErrors
{
    /// <param name="imagePath">The image that names the backing file, as it was opened.</param>
    /// <param name="backingName">The backing file name as the image stores it (or as -b gave it).</param>
    public static BackingFileException CouldNotOpen(string imagePath, string backingName, ImgToolException error)
    {
        string resolved = ImageOpener.ResolveBackingPath(imagePath, backingName);
        string reason = error switch
        {
            // The host's refusal of the backing file itself: its reason alone, the path is already named.
            HostIOException { Reason: { } why } when error.FileName == resolved => why,
            _ when error.FileName is null || error.FileName == resolved => error.Message,
            _ => $"{error.FileName}: {error.Message}",
        };
        return new BackingFileException($"could not open backing file '{resolved}': {reason}", imagePath, error);
    }
}

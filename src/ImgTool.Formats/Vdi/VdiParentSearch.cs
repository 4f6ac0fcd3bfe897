using Microsoft.Win32.SafeHandles;

namespace ImgTool.Formats.Vdi;

/// <summary>
/// Finds a differencing image's parent by UUID among the .vdi files next to it, which is where VirtualBox keeps a
/// snapshot's chain ("Snapshots/{uuid}.vdi" next to each other, the base usually one folder up, where the user names it).
/// Only each file's first sector is read, and at most <see cref="VdiLimits.MaxParentSearchFiles"/> files are looked at.
/// </summary>
internal static class VdiParentSearch
{
    /// <summary>The parent's file name relative to the child's folder, or null when no file there has that UUID.
    /// When several do (copies), the one whose modification UUID the child recorded wins, then the first by name.</summary>
    public static async ValueTask<string?> FindAsync(string childPath, Guid uuidLinkage, Guid uuidParentModify, CancellationToken cancellationToken)
    {
        if (!File.Exists(childPath))
        {
            return null; // an in-memory image has no folder to look in
        }

        string self = Path.GetFullPath(childPath);
        string folder = Path.GetDirectoryName(self) ?? ".";
        List<string> candidates;
        try
        {
            var options = new EnumerationOptions { MatchCasing = MatchCasing.CaseInsensitive, IgnoreInaccessible = true, RecurseSubdirectories = false };
            candidates = Directory.EnumerateFiles(folder, "*.vdi", options).Take(VdiLimits.MaxParentSearchFiles).Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        string? first = null;
        foreach (string path in candidates)
        {
            if (path == self || await ReadHeaderAsync(path, cancellationToken).ConfigureAwait(false) is not { } header || header.UuidCreate != uuidLinkage)
            {
                continue;
            }

            if (header.UuidModify == uuidParentModify)
            {
                return Path.GetFileName(path);
            }

            first ??= Path.GetFileName(path);
        }

        return first;
    }

    private static async ValueTask<VdiHeader?> ReadHeaderAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            byte[] sector = new byte[VdiHeader.SizeBytes];
            int read = await RandomAccess.ReadAsync(handle, sector, 0, cancellationToken).ConfigureAwait(false);
            return read >= VdiHeader.Header1End && VdiHeader.HasSignature(sector) ? VdiHeader.Read(sector) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

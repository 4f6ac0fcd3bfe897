using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats;

/// <summary>Creates image files; a failed create leaves no file behind.</summary>
public static class ImageFactory
{
    /// <summary>Creates (or empties) the file at <paramref name="path"/> and writes a new image into it.
    /// On failure the file is removed, so no half-made image is left looking like a good one.</summary>
    /// <returns>The other files the driver created for the image (VMDK extents, a qcow2 data file), as full paths,
    /// for a caller that must remove the image again.</returns>
    public static async ValueTask<IReadOnlyList<string>> CreateAsync(string path, FormatDriver driver, ImageCreateRequest request, CancellationToken cancellationToken = default)
    {
        driver.EnsureWritableFormat(path);
        request.Options.Validate(driver.CreateOptionSpecs, driver.Name);
        if (request.BackingFile is not null && !driver.SupportsBackingFile)
        {
            throw new UnsupportedFeatureException($"format '{driver.Name}' does not support backing files", path);
        }

        var related = new List<string>();
        using LinuxHostFile file = LinuxHostFile.Create(path);
        try
        {
            await driver.CreateAsync(file, request with { CreateRelatedFile = CreateRelated, OpenRelatedFile = OpenRelated }, cancellationToken).ConfigureAwait(false);
            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            RemoveQuietly(path);
            foreach (string made in related)
            {
                RemoveQuietly(made);
            }

            throw;
        }

        return related;

        IHostFile CreateRelated(string name)
        {
            string full = ImageOpener.ResolveBackingPath(path, name);
            LinuxHostFile created = LinuxHostFile.Create(full);
            related.Add(full);
            return created;
        }

        IHostFile OpenRelated(string name) =>
            LinuxHostFile.Open(ImageOpener.ResolveBackingPath(path, name), new HostOpenOptions(ReadOnly: true, Lock: HostLockMode.None));
    }

    /// <summary>Removes a file this process created, ignoring a file that is already gone.</summary>
    public static void RemoveQuietly(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Nothing more can be done; the caller is already reporting the original failure.
        }
    }
}

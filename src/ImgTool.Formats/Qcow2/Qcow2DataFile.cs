using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// The external data file (docs/interop/qcow2.txt: incompatible bit 2, header extension 0x44415441,
/// autoclear bit 1 "raw external data"). Guest clusters then live in that file at host offset ==
/// guest offset and are not refcounted; the qcow2 file keeps only metadata.
/// </summary>
internal static class Qcow2DataFile
{
    /// <summary>Opens the data file an image names. Relative names are relative to the image's folder
    /// (qemu-img 7.2 takes them relative to its working directory; the folder is what a user expects
    /// when the image is moved with its data file), and the name must stay inside that folder unless
    /// the user opted in, as for VMDK extents.</summary>
    public static IHostFile Open(IHostFile image, Qcow2Header header, ImageOpenContext context, bool readOnly)
    {
        string name = header.ExternalDataFileName
            ?? throw new ImageFormatException("the image keeps its data in an external data file but does not name it (no data file header extension)", image.Path);
        CheckName(name, image.Path, context.AllowOutsideFiles);
        Func<string, bool, IHostFile> open = context.OpenRelatedFile
            ?? throw new UnsupportedFeatureException($"the image's external data file '{name}' cannot be opened here (no folder)", image.Path);
        try
        {
            return open(name, readOnly);
        }
        catch (HostIOException e)
        {
            throw new HostIOException($"external data file '{name}': {e.Message}", image.Path, e);
        }
        catch (ImageLockedException e)
        {
            throw new ImageLockedException($"external data file '{name}': {e.Message}", image.Path);
        }
    }

    /// <summary>Refuses a name that leaves the image's folder (unless allowed) or that is the image itself.</summary>
    public static void CheckName(string name, string imagePath, bool allowOutside)
    {
        if (name.Length == 0 || name.Contains('\0', StringComparison.Ordinal))
        {
            throw new ImageFormatException("the external data file name is empty or contains a NUL byte", imagePath);
        }

        if (!allowOutside && !RelatedFileNames.IsConfined(imagePath, name))
        {
            throw new ImageFormatException($"external data file '{name}' is outside the image's folder; refusing to use it (--allow-outside-extents allows it)", imagePath);
        }

        string full = Path.GetFullPath(ImageOpener.ResolveBackingPath(imagePath, name));
        if (full == Path.GetFullPath(imagePath))
        {
            throw new InvalidOptionException($"the external data file '{name}' is the image file itself", imagePath);
        }
    }
}

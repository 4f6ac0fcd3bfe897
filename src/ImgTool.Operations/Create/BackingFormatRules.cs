using ImgTool.Block.Errors;
using ImgTool.Formats;

namespace ImgTool.Operations.Create;

/// <summary>
/// qemu-img 7.2's rules for a new image's backing file and its format (block.c bdrv_img_create and the drivers'
/// create functions), in qemu-img's words, so that a script written against imgtool runs against qemu-img too:
/// a backing file needs its format named, since probing it lets a guest that writes a qcow2 header into a raw
/// backing file take over the host's files; a backing format needs a backing file. The one way past the first
/// rule is asking for the probe explicitly (--probe-backing-format), which qemu-img does not have.
/// </summary>
public static class BackingFormatRules
{
    public const string ProbeFlag = "--probe-backing-format";

    /// <summary>The checks that need no backing file opened; throws the first that fails.</summary>
    /// <param name="unsafeBacking">-u: the backing file is not opened, so its format cannot be probed.</param>
    public static void CheckCreate(FormatDriver driver, string fileName, string? backingFile, string? backingFormat, bool unsafeBacking, bool probe)
    {
        if (backingFormat is not null && backingFile is null)
        {
            // qemu-img rejects the option itself for formats without backing files, else the driver rejects it.
            throw driver.SupportsBackingFile
                ? new InvalidOptionException("Backing format cannot be used without backing file", fileName)
                : new UnsupportedFeatureException($"Backing file format not supported for file format '{driver.Name}'", fileName);
        }

        if (backingFile is null)
        {
            return;
        }

        if (!driver.SupportsBackingFile)
        {
            throw new UnsupportedFeatureException($"Backing file not supported for file format '{driver.Name}'", fileName);
        }

        if (backingFormat is null && unsafeBacking)
        {
            throw new InvalidOptionException(
                probe ? $"Backing file specified without backing format; {ProbeFlag} needs to open the backing file, which -u forbids" : "Backing file specified without backing format",
                fileName);
        }
    }

    /// <summary>qemu-img's refusal once the backing file is open and its format known (its hint on the same line).</summary>
    public static InvalidOptionException NotGiven(string fileName, string detectedFormat) => new(
        $"Backing file specified without backing format. Detected format of {detectedFormat}. Give -F {detectedFormat}, or {ProbeFlag} to use the detected format.",
        fileName);
}

using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Formats;

namespace ImgTool.Inspect.Inspection;

/// <summary>Opens an image to look inside, read-only, through its format and backing chain. A bare LUKS container is
/// opened as raw unless the user names its format: what is inside it cannot be read without the key, but the container
/// itself is what inspect reports (version, UUID), as blkid does.</summary>
public static class InspectedImage
{
    public static async ValueTask<IImage> OpenAsync(ImageOpener opener, string fileName, string? format, bool forceShare, CancellationToken cancellationToken)
    {
        if (format is null && !(opener.ImageOpts && ImageOptsString.Looks(fileName)))
        {
            try
            {
                using var host = LinuxHostFile.Open(fileName, new HostOpenOptions(true, Lock: HostLockMode.None));
                if (host.Length > 0 && (await opener.ProbeAsync(host, cancellationToken).ConfigureAwait(false)).Name == "luks")
                {
                    format = "raw";
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ImgToolException)
            {
                // The real open below reports the problem in its usual words.
            }
        }

        return await opener.OpenAsync(fileName, new ImageOpenRequest(format, ForceShare: forceShare), cancellationToken).ConfigureAwait(false);
    }
}

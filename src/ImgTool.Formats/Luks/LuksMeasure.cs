using ImgTool.Block.Options;

namespace ImgTool.Formats.Luks;

/// <summary>qemu-img measure for LUKS: a new container's header and key slots come before the payload, so every
/// figure is the payload offset plus the disk (QEMU's block_crypto_measure; the header is sized as create lays it out).</summary>
public static class LuksMeasure
{
    /// <summary>Where the payload of a container created with these options starts. As in QEMU, the key secret must be
    /// named and given (<paramref name="prefix"/> is "encrypt." inside qcow2, empty for the luks format).</summary>
    public static long PayloadOffsetBytes(ImageOptions options, string prefix, IReadOnlyDictionary<string, byte[]>? secrets)
    {
        LuksCreateSettings settings = LuksCreateSettings.Parse(options, prefix, null);
        _ = settings.Password(secrets, null);
        return LuksKeyStore.AreaBytes(settings.Cipher.KeyBytes);
    }
}

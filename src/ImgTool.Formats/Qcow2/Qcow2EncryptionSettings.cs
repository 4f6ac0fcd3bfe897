using ImgTool.Block.Errors;
using ImgTool.Block.Options;
using ImgTool.Formats.Luks;

namespace ImgTool.Formats.Qcow2;

/// <summary>The encrypt.* create options of qcow2: encrypt.format=luks plus the LUKS options under the "encrypt." prefix.</summary>
internal static class Qcow2EncryptionSettings
{
    public static LuksCreateSettings? From(ImageOptions options, string? fileName)
    {
        string? format = options.GetString("encrypt.format");
        if (options.GetBool("encryption") == true || format == "aes")
        {
            throw new UnsupportedFeatureException("legacy AES-CBC qcow2 encryption is not supported; use encrypt.format=luks", fileName);
        }

        if (format is null)
        {
            string? stray = options.Values.Select(v => v.Key).FirstOrDefault(k => k.StartsWith("encrypt.", StringComparison.Ordinal));
            return stray is null ? null : throw new InvalidOptionException($"{stray} needs encrypt.format=luks", fileName);
        }

        if (format != "luks")
        {
            throw new InvalidOptionException($"invalid encrypt.format '{format}': use luks", fileName);
        }

        return LuksCreateSettings.Parse(options, "encrypt.", fileName);
    }
}

using ImgTool.Block.Errors;
using ImgTool.Block.Options;
using ImgTool.Formats.Luks;

namespace ImgTool.Formats.Qcow2;

/// <summary>The encrypt.* create options, with QEMU's defaults: aes-256, xts, plain64, sha256, 2000 ms of PBKDF2.</summary>
internal sealed record Qcow2EncryptionSettings(LuksCipherSpec Cipher, LuksHash Hash, int IterTimeMs, string KeySecretId)
{
    public const int DefaultIterTimeMs = 2000;

    public static Qcow2EncryptionSettings? From(ImageOptions options, string? fileName)
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

        string secret = options.GetString("encrypt.key-secret")
            ?? throw new InvalidOptionException("Parameter 'encrypt.key-secret' is required for cipher", fileName);
        string algorithm = options.GetString("encrypt.cipher-alg") ?? "aes-256";
        int aesKeyBytes = algorithm switch
        {
            "aes-128" => 16,
            "aes-192" => 24,
            "aes-256" => 32,
            _ => throw new InvalidOptionException($"invalid encrypt.cipher-alg '{algorithm}': use aes-128, aes-192 or aes-256", fileName),
        };
        string mode = options.GetString("encrypt.cipher-mode") ?? "xts";
        if (mode is not ("xts" or "cbc"))
        {
            throw new InvalidOptionException($"invalid encrypt.cipher-mode '{mode}': use xts or cbc", fileName);
        }

        if (mode == "cbc" && aesKeyBytes == 24)
        {
            // Its split key material (24 × 4000 bytes) is not a whole number of sectors, which QEMU 7.2 cannot open.
            throw new InvalidOptionException("aes-192 with cipher mode cbc is not supported (QEMU cannot open such images); use xts or another key size", fileName);
        }

        string ivgen = options.GetString("encrypt.ivgen-alg") ?? "plain64";
        if (ivgen is not ("plain" or "plain64" or "essiv"))
        {
            throw new InvalidOptionException($"invalid encrypt.ivgen-alg '{ivgen}': use plain, plain64 or essiv", fileName);
        }

        string? ivHash = ivgen == "essiv" ? options.GetString("encrypt.ivgen-hash-alg") ?? "sha256" : null;
        var cipher = new LuksCipherSpec("aes", mode == "xts" ? aesKeyBytes * 2 : aesKeyBytes, mode, ivgen, ivHash);
        cipher.CheckSupported(fileName);
        LuksHash hash = LuksHash.Parse(options.GetString("encrypt.hash-alg") ?? "sha256", fileName);
        long iterTime = options.GetNumber("encrypt.iter-time") ?? DefaultIterTimeMs;
        if (iterTime is < 1 or > 100_000)
        {
            throw new InvalidOptionException($"invalid encrypt.iter-time {iterTime}: use 1 to 100000 ms", fileName);
        }

        return new Qcow2EncryptionSettings(cipher, hash, (int)iterTime, secret);
    }
}

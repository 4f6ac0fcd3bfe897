using ImgTool.Block.Errors;
using ImgTool.Block.Options;

namespace ImgTool.Formats.Luks;

/// <summary>The LUKS create options (key-secret, cipher-alg, cipher-mode, ivgen-alg, ivgen-hash-alg, hash-alg,
/// iter-time), under a prefix ("encrypt." for qcow2, none for the luks format), with QEMU's defaults:
/// aes-256, xts, plain64, sha256, 2000 ms of PBKDF2.</summary>
internal sealed record LuksCreateSettings(LuksCipherSpec Cipher, LuksHash Hash, int IterTimeMs, string KeySecretId)
{
    public const int DefaultIterTimeMs = 2000;

    public static LuksCreateSettings Parse(ImageOptions options, string prefix, string? fileName)
    {
        string secret = options.GetString(prefix + "key-secret")
            ?? throw new InvalidOptionException($"Parameter '{prefix}key-secret' is required for cipher", fileName);
        string algorithm = options.GetString(prefix + "cipher-alg") ?? "aes-256";
        int aesKeyBytes = algorithm switch
        {
            "aes-128" => 16,
            "aes-192" => 24,
            "aes-256" => 32,
            _ => throw new InvalidOptionException($"invalid {prefix}cipher-alg '{algorithm}': use aes-128, aes-192 or aes-256", fileName),
        };
        string mode = options.GetString(prefix + "cipher-mode") ?? "xts";
        if (mode is not ("xts" or "cbc"))
        {
            throw new InvalidOptionException($"invalid {prefix}cipher-mode '{mode}': use xts or cbc", fileName);
        }

        if (mode == "cbc" && aesKeyBytes == 24)
        {
            // Its split key material (24 × 4000 bytes) is not a whole number of sectors, which QEMU 7.2 cannot open.
            throw new InvalidOptionException("aes-192 with cipher mode cbc is not supported (QEMU cannot open such images); use xts or another key size", fileName);
        }

        string ivgen = options.GetString(prefix + "ivgen-alg") ?? "plain64";
        if (ivgen is not ("plain" or "plain64" or "essiv"))
        {
            throw new InvalidOptionException($"invalid {prefix}ivgen-alg '{ivgen}': use plain, plain64 or essiv", fileName);
        }

        string? ivHash = ivgen == "essiv" ? options.GetString(prefix + "ivgen-hash-alg") ?? "sha256" : null;
        var cipher = new LuksCipherSpec("aes", mode == "xts" ? aesKeyBytes * 2 : aesKeyBytes, mode, ivgen, ivHash);
        cipher.CheckSupported(fileName);
        LuksHash hash = LuksHash.Parse(options.GetString(prefix + "hash-alg") ?? "sha256", fileName);
        long iterTime = options.GetNumber(prefix + "iter-time") ?? DefaultIterTimeMs;
        if (iterTime is < 1 or > 100_000)
        {
            throw new InvalidOptionException($"invalid {prefix}iter-time {iterTime}: use 1 to 100000 ms", fileName);
        }

        return new LuksCreateSettings(cipher, hash, (int)iterTime, secret);
    }

    /// <summary>The password the key-secret names, from the secrets given with --object.</summary>
    public byte[] Password(IReadOnlyDictionary<string, byte[]>? secrets, string? fileName) =>
        secrets?.GetValueOrDefault(KeySecretId) ?? throw new InvalidOptionException($"No secret with id '{KeySecretId}'", fileName);
}

using System.Security.Cryptography;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Luks;

/// <summary>The hash a LUKS header names (hash-spec, or the ESSIV hash): PBKDF2 and the anti-forensic diffuser use it.</summary>
internal sealed record LuksHash(string Name, HashAlgorithmName Algorithm, int DigestBytes)
{
    public static LuksHash Sha1 { get; } = new("sha1", HashAlgorithmName.SHA1, 20);

    public static LuksHash Sha256 { get; } = new("sha256", HashAlgorithmName.SHA256, 32);

    public static LuksHash Sha384 { get; } = new("sha384", HashAlgorithmName.SHA384, 48);

    public static LuksHash Sha512 { get; } = new("sha512", HashAlgorithmName.SHA512, 64);

    public static LuksHash Parse(string name, string? fileName) => name switch
    {
        "sha1" => Sha1,
        "sha256" => Sha256,
        "sha384" => Sha384,
        "sha512" => Sha512,
        _ => throw new UnsupportedFeatureException($"LUKS hash '{name}' is not supported (sha1, sha256, sha384, sha512 are)", fileName),
    };

    public void Hash(ReadOnlySpan<byte> source, Span<byte> destination) =>
        CryptographicOperations.HashData(Algorithm, source, destination);

    public void Pbkdf2(ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt, uint iterations, Span<byte> destination) =>
        Rfc2898DeriveBytes.Pbkdf2(password, salt, destination, checked((int)iterations), Algorithm);
}

namespace ImgTool.Formats.Luks;

/// <summary>
/// The values <see cref="LuksCreateSettings"/> takes for the LUKS create options (QEMU has more ciphers; we write
/// AES only), so that `-o help` of luks and of qcow2's encrypt.* lists what works. Kept apart from the format
/// singletons so that it is initialised before either reads it.
/// </summary>
internal static class LuksCreateChoices
{
    public static readonly string[] CipherAlgorithms = ["aes-128", "aes-192", "aes-256"];

    public static readonly string[] CipherModes = ["xts", "cbc"];

    /// <summary>aes-192 in cbc mode is refused: its key material is no whole number of sectors, which QEMU cannot open.</summary>
    public const string CipherModeDescription = "Name of encryption cipher mode (cbc not with aes-192)";

    public static readonly string[] IvGenerators = ["plain", "plain64", "essiv"];

    /// <summary>ESSIV keys AES with the hash of the volume key, so the hash must be 16, 24 or 32 bytes long: of the
    /// hashes we have, only sha256 is.</summary>
    public static readonly string[] IvHashes = ["sha256"];

    public const string IvHashDescription = "Name of IV generator hash algorithm (with ivgen-alg essiv)";

    public static readonly string[] Hashes = ["sha1", "sha256", "sha384", "sha512"];
}

using ImgTool.Block.Errors;

namespace ImgTool.Formats.Luks;

/// <summary>
/// The cipher a LUKS header names, split as QEMU reports it: cipher-name "aes" with a key size gives
/// cipher-alg "aes-256"; cipher-mode "xts-plain64" gives mode "xts" and IV generator "plain64";
/// "cbc-essiv:sha256" gives "cbc", "essiv" and the ESSIV hash "sha256". XTS keys hold two cipher keys.
/// </summary>
internal sealed record LuksCipherSpec(string CipherName, int KeyBytes, string Mode, string IvGenerator, string? IvHash)
{
    public string CipherAlgorithm => $"{CipherName}-{KeyBytes * 8 / (Mode == "xts" ? 2 : 1)}";

    public static LuksCipherSpec FromHeader(LuksHeader header)
    {
        string mode = header.CipherMode;
        int dash = mode.IndexOf('-', StringComparison.Ordinal);
        string chaining = dash < 0 ? mode : mode[..dash];
        string iv = dash < 0 ? "plain" : mode[(dash + 1)..];
        string? ivHash = null;
        int colon = iv.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            ivHash = iv[(colon + 1)..];
            iv = iv[..colon];
        }

        return new LuksCipherSpec(header.CipherName, header.KeyBytes, chaining, iv, ivHash);
    }

    /// <summary>The header's cipher-mode string for this spec ("xts-plain64", "cbc-essiv:sha256").</summary>
    public string HeaderMode => IvHash is null ? $"{Mode}-{IvGenerator}" : $"{Mode}-{IvGenerator}:{IvHash}";

    /// <summary>Fails unless the sector cipher can be built: AES in XTS or CBC with a plain, plain64 or essiv IV.</summary>
    public void CheckSupported(string? fileName)
    {
        if (CipherName != "aes")
        {
            throw new UnsupportedFeatureException($"LUKS cipher '{CipherName}' is not supported (only aes)", fileName);
        }

        int aesKeyBytes = Mode == "xts" ? KeyBytes / 2 : KeyBytes;
        if (Mode is not ("xts" or "cbc") || (Mode == "xts" && KeyBytes % 2 != 0) || aesKeyBytes is not (16 or 24 or 32))
        {
            throw new UnsupportedFeatureException($"LUKS cipher mode '{HeaderMode}' with {KeyBytes}-byte keys is not supported (aes xts or cbc)", fileName);
        }

        if (IvGenerator is not ("plain" or "plain64" or "essiv") || (IvGenerator == "essiv") != (IvHash is not null))
        {
            throw new UnsupportedFeatureException($"LUKS IV generator '{IvGenerator}' is not supported (plain, plain64, essiv:HASH)", fileName);
        }

        if (IvHash is not null && LuksHash.Parse(IvHash, fileName).DigestBytes is not (16 or 24 or 32))
        {
            throw new UnsupportedFeatureException($"ESSIV hash '{IvHash}' does not give an AES key size", fileName);
        }
    }

    public ISectorCipher Create(ReadOnlySpan<byte> key, string? fileName)
    {
        CheckSupported(fileName);
        IvGenerator ivs = IvGenerator switch
        {
            "plain" => Luks.IvGenerator.Plain(),
            "plain64" => Luks.IvGenerator.Plain64(),
            _ => Luks.IvGenerator.Essiv(LuksHash.Parse(IvHash!, fileName), key),
        };
        return Mode == "xts" ? new XtsAesCipher(key, ivs) : new CbcAesCipher(key, ivs);
    }
}

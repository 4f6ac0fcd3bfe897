using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats.Luks;

/// <summary>QEMU's "luks" format: a LUKS1 container holding the disk (LUKS On-Disk Format Specification 1.2.3).</summary>
public sealed class LuksFormat : FormatDriver
{
    public static LuksFormat Instance { get; } = new();

    private LuksFormat()
    {
    }

    public override string Name => "luks";

    /// <summary>The options qemu-img 7.2 lists for luks, in its order, with the values that work here.</summary>
    public override IReadOnlyList<ImageOptionSpec> CreateOptionSpecs { get; } =
    [
        new("size", ImageOptionKind.Size, "Virtual disk size"),
        new("key-secret", ImageOptionKind.String, "ID of the secret that provides the keyslot passphrase"),
        new("cipher-alg", ImageOptionKind.String, "Name of encryption cipher algorithm", LuksCreateChoices.CipherAlgorithms),
        new("cipher-mode", ImageOptionKind.String, LuksCreateChoices.CipherModeDescription, LuksCreateChoices.CipherModes),
        new("ivgen-alg", ImageOptionKind.String, "Name of IV generator algorithm", LuksCreateChoices.IvGenerators),
        new("ivgen-hash-alg", ImageOptionKind.String, LuksCreateChoices.IvHashDescription, LuksCreateChoices.IvHashes),
        new("hash-alg", ImageOptionKind.String, "Name of encryption hash algorithm", LuksCreateChoices.Hashes),
        new("iter-time", ImageOptionKind.Number, "Time to spend in PBKDF in milliseconds"),
    ];

    /// <summary>The payload of a new container is whatever the file held (holes decrypt to noise), so convert must
    /// write zero ranges too.</summary>
    public override bool CreatesZeroedImages => false;

    public override int Probe(ProbeInput input) => LuksHeader.HasMagic(input.Head) ? 100 : 0;

    public override async ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken = default) =>
        await LuksImage.OpenAsync(file, context, cancellationToken).ConfigureAwait(false);

    /// <summary>Header and slot 0 at the start, payload after it, the file sized to payload offset + disk size (sparse).</summary>
    public override async ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken = default)
    {
        LuksCreateSettings settings = LuksCreateSettings.Parse(request.Options, string.Empty, file.Path);
        byte[] password = settings.Password(request.Secrets, file.Path);
        if (request.SizeBytes < 0 || request.SizeBytes % LuksLimits.SectorBytes != 0)
        {
            throw new InvalidOptionException("the size of a luks image must be a multiple of 512 bytes", file.Path);
        }

        if (request.BackingFile is not null)
        {
            throw new UnsupportedFeatureException("luks images cannot have a backing file", file.Path);
        }

        long payload = LuksKeyStore.AreaBytes(settings.Cipher.KeyBytes);
        file.SetLength(payload + request.SizeBytes);
        (_, byte[] masterKey) = await LuksKeyStore.CreateAsync(
            settings.Cipher, settings.Hash, password, settings.IterTimeMs, file.WriteAsync, file.Path, cancellationToken).ConfigureAwait(false);
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(masterKey);
    }
}

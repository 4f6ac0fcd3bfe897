using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats.Luks;

namespace ImgTool.Formats.Qcow2;

/// <summary>QEMU's qcow2 format, versions 2 (compat=0.10) and 3 (compat=1.1) (docs/interop/qcow2.txt).</summary>
public sealed class Qcow2Format : FormatDriver
{
    public static Qcow2Format Instance { get; } = new();

    private Qcow2Format()
    {
    }

    public override string Name => "qcow2";

    public override bool SupportsBackingFile => true;

    /// <summary>The options qemu-img 7.2 has for qcow2, in its internal order (its "Formatting ..." line), with the
    /// defaults that line prints.</summary>
    public override IReadOnlyList<ImageOptionSpec> CreateOptionSpecs { get; } =
    [
        // qemu-img's legacy AES encryption is not implemented: "encryption" still parses (on is refused with a
        // pointer to LUKS) but is not listed, and encrypt.format lists only luks. The LUKS options list the values
        // LuksCreateSettings takes.
        new("encryption", ImageOptionKind.Bool, "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)") { Hidden = true },
        new("encrypt.format", ImageOptionKind.String, "Encrypt the image", ["luks"]),
        new("encrypt.key-secret", ImageOptionKind.String, "ID of secret providing the LUKS passphrase"),
        new("encrypt.cipher-alg", ImageOptionKind.String, "Name of encryption cipher algorithm", LuksCreateChoices.CipherAlgorithms),
        new("encrypt.cipher-mode", ImageOptionKind.String, LuksCreateChoices.CipherModeDescription, LuksCreateChoices.CipherModes),
        new("encrypt.ivgen-alg", ImageOptionKind.String, "Name of IV generator algorithm", LuksCreateChoices.IvGenerators),
        new("encrypt.ivgen-hash-alg", ImageOptionKind.String, LuksCreateChoices.IvHashDescription, LuksCreateChoices.IvHashes),
        new("encrypt.hash-alg", ImageOptionKind.String, "Name of encryption hash algorithm", LuksCreateChoices.Hashes),
        new("encrypt.iter-time", ImageOptionKind.Number, "Time to spend in PBKDF in milliseconds"),
        new("cluster_size", ImageOptionKind.Size, "qcow2 cluster size", Default: "65536"),
        new("extended_l2", ImageOptionKind.Bool, "Extended L2 tables", Default: "off"),
        new("preallocation", ImageOptionKind.Choice, "Preallocation mode (allowed values: off, metadata, falloc, full)", ["off", "metadata", "falloc", "full"]),
        new("compression_type", ImageOptionKind.Choice, "Compression method used for image cluster compression", ["zlib", "zstd"], "zlib"),
        new("size", ImageOptionKind.Size, "Virtual disk size"),
        new("compat", ImageOptionKind.String, "Compatibility level (v2 [0.10] or v3 [1.1])"),
        new("backing_file", ImageOptionKind.String, "File name of a base image"),
        new("backing_fmt", ImageOptionKind.String, "Image format of the base image"),
        new("data_file", ImageOptionKind.String, "File name of an external data file"),
        new("data_file_raw", ImageOptionKind.Bool, "The external data file must stay valid as a raw image"),
        new("lazy_refcounts", ImageOptionKind.Bool, "Postpone refcount updates", Default: "off"),
        new("refcount_bits", ImageOptionKind.Number, "Width of a reference count entry in bits", Default: "16"),
    ];

    /// <summary>Compressed clusters cannot live in an external data file (the spec forbids them there), nor be encrypted.</summary>
    public override bool SupportsCompression(ImageOptions options) => options.GetString("data_file") is null && options.GetString("encrypt.format") is null;

    /// <summary>The magic "QFI\xfb" is enough, as in QEMU: a qcow2 file of a version we do not know must
    /// be refused as such, not opened as raw.</summary>
    /// <summary>As QEMU's qcow2_probe: the magic and a version of 2 or more (version 1 is the qcow driver's).</summary>
    public override int Probe(ProbeInput input) =>
        input.Head.Length >= 4 && BinaryPrimitives.ReadUInt32BigEndian(input.Head) == Qcow2Header.Magic
            && (input.Head.Length < 8 || BinaryPrimitives.ReadUInt32BigEndian(input.Head[4..]) >= 2) ? 100 : 0;

    public override async ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken = default) =>
        await Qcow2Image.OpenAsync(file, context, cancellationToken).ConfigureAwait(false);

    public override ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken = default) =>
        Qcow2Create.CreateAsync(file, request, cancellationToken);
}

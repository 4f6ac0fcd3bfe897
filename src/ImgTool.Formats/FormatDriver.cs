using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats;

/// <summary>One image format: how to recognise, open and create it, and the `-o` options it takes.</summary>
public abstract class FormatDriver
{
    /// <summary>The name qemu-img uses for the format (raw, qcow2, vmdk, vpc, vhdx, vdi, ...).</summary>
    public abstract string Name { get; }

    /// <summary>The options `create -o` and `convert -o` accept, in the order `-o help` lists them.</summary>
    public abstract IReadOnlyList<ImageOptionSpec> CreateOptionSpecs { get; }

    /// <summary>Whether images of this format can name a backing file.</summary>
    public virtual bool SupportsBackingFile => false;

    /// <summary>Whether opened images implement <see cref="ICompressedWrites"/> (convert -c), given the create options.</summary>
    public virtual bool SupportsCompression(ImgTool.Block.Options.ImageOptions options) => false;

    /// <summary>When <see cref="SupportsCompression"/> is false for these options but other options of the format
    /// compress, what to say (VMDK: "-o subformat=streamOptimized compresses"); null when the format never does.</summary>
    public virtual string? CompressionHint(ImgTool.Block.Options.ImageOptions options) => null;

    /// <summary>Whether images created with these options store every unit compressed (VMDK streamOptimized),
    /// so convert compresses on all cores even without -c.</summary>
    public virtual bool AlwaysCompresses(ImgTool.Block.Options.ImageOptions options) => false;

    /// <summary>Whether a newly created image reads as zeros everywhere (QEMU's has_zero_init), so convert can skip zero ranges.</summary>
    public virtual bool CreatesZeroedImages => true;

    /// <summary>Whether imgtool only reads this format (qcow v1, parallels, bochs, cloop, dmg): create, convert -O and
    /// opening for write are refused with one line, before any file is touched.</summary>
    public virtual bool IsReadOnlyFormat => false;

    /// <summary>Throws the one-line "read-only format" error when images of this format cannot be created or written.</summary>
    public void EnsureWritableFormat(string? fileName)
    {
        if (IsReadOnlyFormat)
        {
            throw new ImgTool.Block.Errors.UnsupportedFeatureException($"'{Name}' is a read-only format: imgtool reads it, but cannot create or write it", fileName);
        }
    }

    /// <summary>How sure the driver is that the data is its format: 0 (no) to 100 (magic and header check out).</summary>
    public abstract int Probe(ProbeInput input);

    public abstract ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken = default);

    /// <summary>Writes a new, empty image into an empty host file.</summary>
    public abstract ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken = default);
}

/// <summary>What a driver sees when asked whether a file is its format: the start and the end of the file
/// (VHD keeps its footer at the end).</summary>
public readonly ref struct ProbeInput(ReadOnlySpan<byte> head, ReadOnlySpan<byte> tail, long fileLength, string? fileName)
{
    /// <summary>QEMU's BLOCK_PROBE_BUF_SIZE: what qemu-img probes with, so both tools recognise the same files.</summary>
    public const int HeadBytes = 2048;
    public const int TailBytes = 512;

    public ReadOnlySpan<byte> Head { get; } = head;

    public ReadOnlySpan<byte> Tail { get; } = tail;

    public long FileLength { get; } = fileLength;

    public string? FileName { get; } = fileName;
}

/// <summary>Everything a driver needs to open an image besides its host file.</summary>
/// <param name="ReadOnly">Open without write access.</param>
/// <param name="OpenBackingAsync">Opens a backing file by the name the image stores and the format it names
/// (null to probe); relative names are resolved against the image's folder by the opener.
/// Null when backing files are not to be opened (qemu-img info, rebase -u).</param>
/// <param name="OpenRelatedFile">For multi-file formats (VMDK extents): opens another host file named relative to
/// the image's folder (absolute names stay), with the image's cache and lock mode; the second argument asks for a
/// read-only open. The driver owns and disposes what it returns, and checks names it must confine. Null when the
/// image has no folder (in-memory tests), in which case a driver needing it reports that it cannot open the image.</param>
/// <param name="AllowOutsideFiles">The user opted in to files named outside the image's folder (absolute or "..").
/// A descriptor is data from the image: without this, it must not make us open arbitrary files.</param>
/// <param name="EncryptionPassword">The secret that unlocks an encrypted image (qemu's encrypt.key-secret), or null.</param>
/// <param name="MetadataOnly">The caller reads no guest data (info): an encrypted image opens without its key.</param>
/// <param name="BackingFileOverride">A backing file the user named for this image (--image-opts backing.file.filename=),
/// for formats that store no backing file name (a differencing VDI links its parent by UUID only); null otherwise.</param>
/// <param name="Checking">The image is opened for `check` (QEMU's BDRV_O_CHECK): a driver that checks a dirty image on
/// open (QED's need-check bit) leaves that to the check, which reports and repairs what it finds.</param>
public sealed record ImageOpenContext(
    bool ReadOnly,
    Func<string, string?, CancellationToken, ValueTask<IImage>>? OpenBackingAsync,
    Func<string, bool, IHostFile>? OpenRelatedFile = null,
    bool AllowOutsideFiles = false,
    byte[]? EncryptionPassword = null,
    bool MetadataOnly = false,
    string? BackingFileOverride = null,
    bool Checking = false);

/// <summary>A create request: the virtual size, the parsed `-o` options and the backing file, if any.</summary>
/// <param name="CreateRelatedFile">For multi-file formats: creates (or empties) another file named relative to the new
/// image's folder; the driver disposes it. A failed create removes every file made this way too.</param>
/// <param name="OpenRelatedFile">Opens an existing file named relative to the new image's folder, read-only and without
/// locks (as qemu-img create reads a backing file); the driver disposes it.</param>
/// <param name="AllowOutsideFiles">The user opted in to naming other files (a qcow2 data file) outside the image's folder,
/// which later opens would otherwise refuse.</param>
/// <param name="Secrets">The secrets given with --object secret, by id (encrypt.key-secret names one).</param>
public sealed record ImageCreateRequest(
    long SizeBytes,
    ImageOptions Options,
    string? BackingFile = null,
    string? BackingFormat = null,
    Func<string, IHostFile>? CreateRelatedFile = null,
    Func<string, IHostFile>? OpenRelatedFile = null,
    bool AllowOutsideFiles = false,
    IReadOnlyDictionary<string, byte[]>? Secrets = null);

using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats;

/// <summary>What to open and how.</summary>
/// <param name="Format">The format to force (-f), or null to probe.</param>
/// <param name="ForceShare">Take no locks (-U); read-only opens only.</param>
/// <param name="OpenBacking">Open the backing chain too (false for `info` without --backing-chain and for `rebase -u`).</param>
/// <param name="EncryptionPassword">The key secret for the top image (encrypt.key-secret), or null.</param>
/// <param name="MetadataOnly">No guest data will be read (info): encrypted images open without a key.</param>
/// <param name="BackingFile">The top image's backing file as the user names it, for formats that store none (VDI).</param>
/// <param name="Checking">Opened for `check`: the top image skips its own open-time consistency check (QEMU's BDRV_O_CHECK).</param>
public sealed record ImageOpenRequest(
    string? Format = null,
    bool ReadOnly = true,
    bool ForceShare = false,
    CacheMode Cache = CacheMode.Writeback,
    bool OpenBacking = true,
    byte[]? EncryptionPassword = null,
    bool MetadataOnly = false,
    string? BackingFile = null,
    bool Checking = false);

/// <summary>Opens an image file: probes or forces its format, then opens its backing chain, read-only,
/// with relative backing names resolved against the folder of the image that names them.</summary>
public sealed class ImageOpener(FormatRegistry registry)
{
    /// <summary>Deepest backing chain accepted; deeper is almost surely a mistake or a hostile image.</summary>
    public const int MaxBackingDepth = 64;

    public FormatRegistry Registry { get; } = registry;

    /// <summary>Let multi-file images (VMDK descriptors) name files outside their own folder.</summary>
    public bool AllowOutsideFiles { get; init; }

    /// <summary>The secrets given with --object secret, by id: encrypt.key-secret names one.</summary>
    public IReadOnlyDictionary<string, byte[]> Secrets { get; init; } = new Dictionary<string, byte[]>();

    /// <summary>--image-opts: a filename containing '=' is an option string (<see cref="ImageOptsString"/>).</summary>
    public bool ImageOpts { get; init; }

    public ValueTask<IImage> OpenAsync(string path, ImageOpenRequest request, CancellationToken cancellationToken = default)
    {
        if (ImageOpts && ImageOptsString.Looks(path))
        {
            ImageOptsString opts = ImageOptsString.Parse(path);
            request = request with
            {
                Format = opts.Driver ?? request.Format,
                EncryptionPassword = opts.KeySecretId is { } id ? Secret(id) : request.EncryptionPassword,
                BackingFile = opts.BackingFileName ?? request.BackingFile,
            };
            path = opts.FileName;
        }

        return OpenLayerAsync(path, request.Format, request, [], cancellationToken);
    }

    /// <summary>
    /// Opens the backing file an image names or will name (create -b): resolved against that image's folder, with a
    /// failure that says it is the backing file and which path was tried. A bad option (an unknown -F) stays as it is.
    /// </summary>
    public async ValueTask<IImage> OpenBackingFileAsync(string imagePath, string backingName, ImageOpenRequest request, CancellationToken cancellationToken = default)
    {
        try
        {
            return await OpenAsync(ResolveBackingPath(imagePath, backingName), request, cancellationToken).ConfigureAwait(false);
        }
        catch (ImgToolException e) when (e is not (BackingFileException or InvalidOptionException))
        {
            throw BackingFileErrors.CouldNotOpen(imagePath, backingName, e);
        }
    }

    /// <summary>The secret with this id, or the error qemu-img gives for an unknown one.</summary>
    public byte[] Secret(string id) =>
        Secrets.TryGetValue(id, out byte[]? secret) ? secret : throw new InvalidOptionException($"No secret with id '{id}'");

    /// <summary>Resolves a backing file name as QEMU does: absolute names stay, relative ones are relative
    /// to the folder of the image that names them.</summary>
    public static string ResolveBackingPath(string imagePath, string backingName) =>
        Path.IsPathRooted(backingName)
            ? backingName
            : Path.Combine(Path.GetDirectoryName(imagePath) ?? ".", backingName);

    /// <summary>Chooses the driver for an open host file by its content.</summary>
    public async ValueTask<FormatDriver> ProbeAsync(IHostFile file, CancellationToken cancellationToken = default)
    {
        long length = file.Length;
        if (length == 0)
        {
            throw new ImageFormatException("cannot determine the format of an empty file; use -f raw to open it as an empty raw image", file.Path);
        }

        byte[] head = new byte[(int)Math.Min(length, ProbeInput.HeadBytes)];
        await ReadDataOnlyAsync(file, 0, head, cancellationToken).ConfigureAwait(false);
        byte[] tail = new byte[(int)Math.Min(length, ProbeInput.TailBytes)];
        await ReadDataOnlyAsync(file, length - tail.Length, tail, cancellationToken).ConfigureAwait(false);
        return Registry.Probe(new ProbeInput(head, tail, length, file.Path));
    }

    /// <summary>
    /// Reads only what the file stores as data; holes are zeros without a read. Reading a preallocated
    /// (unwritten) extent would pull it into the page cache, after which SEEK_DATA reports it as data,
    /// so probing must not change what `map` shows afterwards.
    /// </summary>
    private static async ValueTask ReadDataOnlyAsync(IHostFile file, long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        for (int done = 0; done < buffer.Length;)
        {
            HostExtent extent = file.GetExtent(offsetBytes + done, buffer.Length - done);
            Memory<byte> part = buffer.Slice(done, (int)extent.LengthBytes);
            if (extent.IsData)
            {
                await file.ReadZeroFilledAsync(offsetBytes + done, part, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                part.Span.Clear();
            }

            done += part.Length;
        }
    }

    private async ValueTask<IImage> OpenLayerAsync(string path, string? format, ImageOpenRequest request, IReadOnlyList<string> above, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(path))
        {
            throw new BackingFileException("the image names an empty backing file", above.Count > 0 ? above[^1] : null);
        }

        string canonical = Canonical(path);
        if (above.Contains(canonical))
        {
            throw new BackingFileException("the backing chain loops back to this image", path);
        }

        if (above.Count > MaxBackingDepth)
        {
            throw new BackingFileException($"the backing chain is deeper than {MaxBackingDepth} images", path);
        }

        FormatDriver? forced = format is null ? null : Registry.Get(format);
        var host = LinuxHostFile.Open(path, new HostOpenOptions(
            request.ReadOnly,
            request.Cache,
            request.ForceShare ? HostLockMode.None : HostLockMode.Auto));
        try
        {
            FormatDriver driver = forced ?? await ProbeAsync(host, cancellationToken).ConfigureAwait(false);
            IReadOnlyList<string> chain = [.. above, canonical];
            ImageOpenContext context = new(request.ReadOnly, request.OpenBacking ? OpenBacking : null, OpenRelated, AllowOutsideFiles,
                above.Count == 0 ? request.EncryptionPassword : null, request.MetadataOnly, above.Count == 0 ? request.BackingFile : null, above.Count == 0 && request.Checking);
            return await driver.OpenAsync(host, context, cancellationToken).ConfigureAwait(false);

            // Backing files are always opened read-only: only the top image is ever written.
            ValueTask<IImage> OpenBacking(string name, string? backingFormat, CancellationToken ct) =>
                OpenLayerAsync(ResolveBackingPath(path, name), backingFormat, request with { ReadOnly = true }, chain, ct);

            // Other files of the same image (VMDK extents) share its cache and lock mode.
            IHostFile OpenRelated(string name, bool readOnly) =>
                LinuxHostFile.Open(ResolveBackingPath(path, name), new HostOpenOptions(
                    readOnly,
                    request.Cache,
                    request.ForceShare ? HostLockMode.None : HostLockMode.Auto));
        }
        catch (ImgToolException)
        {
            host.Dispose();
            throw;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            host.Dispose();
            throw new HostIOException(e.Message, path, e);
        }
    }

    private static string Canonical(string path)
    {
        string full = Path.GetFullPath(path);
        try
        {
            return new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
        }
        catch (IOException)
        {
            return full;
        }
    }
}

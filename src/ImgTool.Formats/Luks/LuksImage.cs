using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;

namespace ImgTool.Formats.Luks;

/// <summary>
/// A raw LUKS1 container (QEMU's "luks" driver): the header and key material, then the payload from
/// payload-offset to the end of the file, encrypted in 512-byte sectors numbered from the payload start.
/// Every range is data: a hole in the file does not decrypt to zeros, so nothing can be skipped as zero.
/// </summary>
internal sealed class LuksImage : IImage, IEncrypted, IResizable
{
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ISectorCipher? _cipher;
    private readonly bool _readOnly;

    private LuksImage(IHostFile file, LuksHeader header, ISectorCipher? cipher, bool readOnly)
    {
        HostFile = file;
        Header = header;
        _cipher = cipher;
        _readOnly = readOnly;
    }

    public LuksHeader Header { get; }

    public string FormatName => "luks";

    public string? EncryptionFormat => "luks";

    public bool IsUnlocked => _cipher is not null;

    public IHostFile HostFile { get; }

    public ImageDetails Details => new(null, false, "luks", LuksInfo.Build(Header, withFormat: false), Encrypted: true);

    /// <summary>As QEMU: the file's length past the payload offset, in whole sectors.</summary>
    public long SizeBytes => Math.Max(0, HostFile.Length - Header.PayloadOffsetBytes) & ~(LuksLimits.SectorBytes - 1L);

    public int Alignment => 1;

    public bool IsReadOnly => _readOnly || HostFile.IsReadOnly;

    private ISectorCipher Cipher => _cipher ?? throw new EncryptionKeyException("the image is encrypted and was opened without a key", HostFile.Path);

    /// <summary>The payload is the rest of the file, so resizing is setting the file's length (QEMU's block_crypto
    /// truncate). A grown range holds no ciphertext yet; resize then writes encrypted zeros there, so it reads as zeros.</summary>
    public ValueTask ResizeAsync(long newSizeBytes, CancellationToken cancellationToken = default)
    {
        if (newSizeBytes % LuksLimits.SectorBytes != 0)
        {
            throw new InvalidOptionException($"The new size must be a multiple of {LuksLimits.SectorBytes}", HostFile.Path);
        }

        if (IsReadOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", HostFile.Path);
        }

        HostFile.SetLength(Header.PayloadOffsetBytes + newSizeBytes);
        return ValueTask.CompletedTask;
    }

    public static async ValueTask<LuksImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken)
    {
        byte[] raw = new byte[LuksHeader.Length];
        if (file.Length < LuksHeader.Length)
        {
            throw new ImageFormatException("file is too short for a LUKS header", file.Path);
        }

        await file.ReadZeroFilledAsync(0, raw, cancellationToken).ConfigureAwait(false);
        LuksHeader header = LuksHeader.Read(raw, file.Length, file.Path);
        if (header.PayloadOffsetBytes > file.Length)
        {
            throw new ImageFormatException($"LUKS payload offset {header.PayloadOffsetBytes} lies past the end of the file", file.Path);
        }

        ISectorCipher? cipher = null;
        if (context.EncryptionPassword is { } password)
        {
            byte[] masterKey = await LuksKeyStore.UnlockAsync(header, password, file.ReadZeroFilledAsync, file.Path, cancellationToken).ConfigureAwait(false);
            cipher = LuksCipherSpec.FromHeader(header).Create(masterKey, file.Path);
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(masterKey); // the cipher keeps its own copies
        }
        else if (!context.MetadataOnly)
        {
            throw new EncryptionKeyException("Parameter 'key-secret' is required for cipher", file.Path);
        }

        return new LuksImage(file, header, cipher, context.ReadOnly);
    }

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        return EncryptedSectors.ReadAsync(Cipher, HostFile, Header.PayloadOffsetBytes, offsetBytes, buffer, cancellationToken);
    }

    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        if (IsReadOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", HostFile.Path);
        }

        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EncryptedSectors.WriteAsync(Cipher, HostFile, Header.PayloadOffsetBytes, offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Zeros must be written encrypted: the file's own zeros would decrypt to noise.</summary>
    public async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default)
    {
        const int Chunk = 1 << 20;
        byte[] zeros = new byte[(int)Math.Min(Chunk, lengthBytes)];
        for (long done = 0; done < lengthBytes; done += zeros.Length)
        {
            await WriteAsync(offsetBytes + done, zeros.AsMemory(0, (int)Math.Min(zeros.Length, lengthBytes - done)), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Discard is advisory; the payload has no way to mark a range unused.</summary>
    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => HostFile.FlushAsync(cancellationToken);

    /// <summary>Everything is data, without a host offset (the host bytes are not the guest's), as qemu-img map shows.</summary>
    public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, lengthBytes);
        return ValueTask.FromResult(new BlockStatus(BlockStatusKind.Data, lengthBytes));
    }

    public ValueTask DisposeAsync()
    {
        _cipher?.Dispose();
        HostFile.Dispose();
        _writeLock.Dispose();
        return ValueTask.CompletedTask;
    }

    private void CheckRange(long offsetBytes, long lengthBytes)
    {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes > SizeBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"request [{offsetBytes}, +{lengthBytes}) is outside the disk ({SizeBytes} bytes)");
        }
    }
}

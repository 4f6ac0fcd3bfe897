using System.Buffers.Binary;
using System.Security.Cryptography;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Formats.Luks;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// LUKS encryption of data clusters (docs/interop/qcow2.txt, "Data encryption", crypt_method 2): the LUKS
/// header and key material sit in clusters the "Full disk encryption header pointer" extension names;
/// every data cluster is encrypted with the LUKS payload cipher in 512-byte sectors whose IV comes from the
/// sector's host offset (QEMU's crypt_physical_offset: the offset in the file that holds the data), not
/// from the guest offset. Compressed clusters cannot be encrypted.
/// </summary>
internal sealed partial class Qcow2Image
{
    private ISectorCipher? _cipher;

    /// <summary>The LUKS header, for images with crypt_method 2; null otherwise.</summary>
    public LuksHeader? Luks { get; private set; }

    /// <summary>Where the LUKS header area lies in the image file (offset, length), from the header extension.</summary>
    public (long OffsetBytes, long LengthBytes) LuksArea { get; private set; }

    public bool IsEncrypted => Luks is not null;

    public string? EncryptionFormat => IsEncrypted ? "luks" : null;

    public bool IsUnlocked => !IsEncrypted || _cipher is not null;

    /// <summary>The extension's two big-endian 64-bit fields: offset and length of the LUKS header area.</summary>
    internal static (long OffsetBytes, long LengthBytes) ReadLuksArea(Qcow2Header header, long fileLength, string fileName)
    {
        byte[] data = header.Extensions.First(e => e.Type == Qcow2HeaderExtension.FullDiskEncryption).Data;
        if (data.Length != 16)
        {
            throw new ImageFormatException($"full disk encryption header extension has length {data.Length}, not 16", fileName);
        }

        long offset = BinaryPrimitives.ReadInt64BigEndian(data);
        long length = BinaryPrimitives.ReadInt64BigEndian(data.AsSpan(8));
        if (offset <= 0 || (offset & (header.ClusterSize - 1)) != 0 || length < LuksHeader.Length
            || length > LuksLimits.MaxHeaderAreaBytes || offset > fileLength - LuksHeader.Length)
        {
            throw new ImageFormatException($"invalid LUKS header area (offset {offset}, length {length})", fileName);
        }

        return (offset, length);
    }

    /// <summary>Reads the LUKS header; with a password also unlocks the master key. Without one the image can
    /// only show its metadata (info), as qemu-img opens it without I/O.</summary>
    private async ValueTask OpenEncryptionAsync(ImageOpenContext context, CancellationToken cancellationToken)
    {
        (long offset, long length) = ReadLuksArea(Header, HostFile.Length, HostFile.Path);
        LuksArea = (offset, length);
        byte[] raw = new byte[LuksHeader.Length];
        await HostFile.ReadZeroFilledAsync(offset, raw, cancellationToken).ConfigureAwait(false);
        Luks = LuksHeader.Read(raw, length, HostFile.Path);
        if (context.EncryptionPassword is { } password)
        {
            byte[] masterKey = await LuksKeyStore.UnlockAsync(Luks, password, ReadArea, HostFile.Path, cancellationToken).ConfigureAwait(false);
            _cipher = LuksCipherSpec.FromHeader(Luks).Create(masterKey, HostFile.Path);
            CryptographicOperations.ZeroMemory(masterKey); // the cipher keeps its own copies
        }
        else if (!context.MetadataOnly)
        {
            throw new EncryptionKeyException("Parameter 'encrypt.key-secret' is required for cipher", HostFile.Path);
        }

        ValueTask ReadArea(long areaOffset, Memory<byte> buffer, CancellationToken ct) =>
            HostFile.ReadZeroFilledAsync(offset + areaOffset, buffer, ct);
    }

    private ISectorCipher Cipher => _cipher
        ?? throw new EncryptionKeyException("the image is encrypted and was opened without a key", HostFile.Path);

    /// <summary>Reads and decrypts guest data at a host offset (sector numbers are host offsets / 512).</summary>
    private ValueTask ReadEncryptedAsync(long host, Memory<byte> part, CancellationToken cancellationToken) =>
        EncryptedSectors.ReadAsync(Cipher, DataFile, 0, host, part, cancellationToken);

    /// <summary>Encrypts and writes guest data at a host offset; the caller holds the metadata lock, so no other
    /// write shares an edge sector.</summary>
    private ValueTask WriteEncryptedAsync(long host, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
        EncryptedSectors.WriteAsync(Cipher, DataFile, 0, host, data, cancellationToken);

    private void DisposeEncryption() => _cipher?.Dispose();
}

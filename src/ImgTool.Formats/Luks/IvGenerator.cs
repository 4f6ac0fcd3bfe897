using System.Buffers.Binary;
using System.Security.Cryptography;

namespace ImgTool.Formats.Luks;

/// <summary>The IV generators dm-crypt names after the mode ("xts-plain64", "cbc-essiv:sha256"): plain is the
/// sector number truncated to 32 bits, plain64 the full 64-bit number, both little-endian and zero-padded to
/// the cipher block; essiv encrypts the plain64 block with AES keyed by the hash of the master key.</summary>
internal sealed class IvGenerator : IDisposable
{
    public const int BlockBytes = 16;

    private readonly bool _truncate;
    private readonly AesPool? _essiv;

    private IvGenerator(bool truncate, AesPool? essiv)
    {
        _truncate = truncate;
        _essiv = essiv;
    }

    public static IvGenerator Plain() => new(true, null);

    public static IvGenerator Plain64() => new(false, null);

    public static IvGenerator Essiv(LuksHash hash, ReadOnlySpan<byte> masterKey)
    {
        byte[] key = new byte[hash.DigestBytes];
        hash.Hash(masterKey, key);
        return new(false, new AesPool(key));
    }

    /// <summary>Writes one IV per 16 bytes of <paramref name="ivs"/>, for consecutive sectors.</summary>
    public void Fill(Span<byte> ivs, long firstSector)
    {
        for (int i = 0; i < ivs.Length / BlockBytes; i++)
        {
            long sector = firstSector + i;
            Span<byte> iv = ivs.Slice(i * BlockBytes, BlockBytes);
            BinaryPrimitives.WriteUInt64LittleEndian(iv, _truncate ? (uint)sector : (ulong)sector);
            iv[8..].Clear();
        }

        if (_essiv is not null)
        {
            Aes aes = _essiv.Rent();
            try
            {
                aes.EncryptEcb(ivs, ivs, PaddingMode.None);
            }
            finally
            {
                _essiv.Return(aes);
            }
        }
    }

    public void Dispose() => _essiv?.Dispose();
}

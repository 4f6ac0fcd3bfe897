using System.Security.Cryptography;

namespace ImgTool.Formats.Luks;

/// <summary>AES-CBC per 512-byte sector with a per-sector IV (plain, plain64 or essiv), as dm-crypt's
/// "cbc-essiv:sha256": each sector is its own CBC chain.</summary>
internal sealed class CbcAesCipher(ReadOnlySpan<byte> key, IvGenerator ivs) : ISectorCipher
{
    private const int SectorBytes = LuksLimits.SectorBytes;
    private const int BlockBytes = 16;
    private const int ChunkSectors = 128;

    private readonly AesPool _key = new(key.ToArray());
    private readonly IvGenerator _ivs = ivs;

    public void Encrypt(Span<byte> data, long firstSector) => Transform(data, firstSector, encrypt: true);

    public void Decrypt(Span<byte> data, long firstSector) => Transform(data, firstSector, encrypt: false);

    private void Transform(Span<byte> data, long firstSector, bool encrypt)
    {
        Span<byte> ivs = stackalloc byte[ChunkSectors * BlockBytes];
        Aes aes = _key.Rent();
        try
        {
            int sectors = (data.Length + SectorBytes - 1) / SectorBytes;
            for (int first = 0; first < sectors; first += ChunkSectors)
            {
                int count = Math.Min(ChunkSectors, sectors - first);
                _ivs.Fill(ivs[..(count * BlockBytes)], firstSector + first);
                for (int s = 0; s < count; s++)
                {
                    int start = (first + s) * SectorBytes;
                    Span<byte> sector = data.Slice(start, Math.Min(SectorBytes, data.Length - start));
                    ReadOnlySpan<byte> iv = ivs.Slice(s * BlockBytes, BlockBytes);
                    if (encrypt)
                    {
                        aes.EncryptCbc(sector, iv, sector, PaddingMode.None);
                    }
                    else
                    {
                        aes.DecryptCbc(sector, iv, sector, PaddingMode.None);
                    }
                }
            }
        }
        finally
        {
            _key.Return(aes);
        }
    }

    public void Dispose()
    {
        _key.Dispose();
        _ivs.Dispose();
    }
}

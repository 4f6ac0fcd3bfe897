using System.Buffers;
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


    /// <summary>CBC decryption has no chain between blocks' AES calls: one ECB call over the whole request, then
    /// each block XORed with the ciphertext block before it (or the sector's IV), vectorized.</summary>
    public void Decrypt(Span<byte> data, long firstSector)
    {
        int chunkBytes = ChunkSectors * SectorBytes;
        byte[] previous = ArrayPool<byte>.Shared.Rent(Math.Min(chunkBytes, data.Length));
        Span<byte> ivs = stackalloc byte[ChunkSectors * BlockBytes];
        Aes aes = _key.Rent();
        try
        {
            for (int done = 0; done < data.Length; done += chunkBytes)
            {
                Span<byte> chunk = data.Slice(done, Math.Min(chunkBytes, data.Length - done));
                int sectors = (chunk.Length + SectorBytes - 1) / SectorBytes;
                _ivs.Fill(ivs[..(sectors * BlockBytes)], firstSector + (done / SectorBytes));

                // previous[i] = the block chained into block i: the sector's IV for its first block, else the
                // ciphertext block before it.
                Span<byte> chain = previous.AsSpan(0, chunk.Length);
                chunk[..^BlockBytes].CopyTo(chain[BlockBytes..]);
                for (int s = 0; s < sectors; s++)
                {
                    ivs.Slice(s * BlockBytes, BlockBytes).CopyTo(chain[(s * SectorBytes)..]);
                }

                aes.DecryptEcb(chunk, chunk, PaddingMode.None);
                XtsAesCipher.Xor(chunk, chain);
            }
        }
        finally
        {
            _key.Return(aes);
            ArrayPool<byte>.Shared.Return(previous);
        }
    }

    /// <summary>CBC encryption chains every block into the next, so each sector is one CBC call.</summary>
    public void Encrypt(Span<byte> data, long firstSector)
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
                    aes.EncryptCbc(sector, iv, sector, PaddingMode.None);
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

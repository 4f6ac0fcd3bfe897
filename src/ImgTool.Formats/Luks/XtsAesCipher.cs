using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;

namespace ImgTool.Formats.Luks;

/// <summary>
/// AES-XTS (IEEE 1619-2007) over 512-byte sectors, built on AES-ECB so that the AES itself runs in bulk
/// (AES-NI through the platform library): for a chunk of sectors we compute every block's tweak
/// (T0 = AES(K2, IV), then T(j+1) = T(j)·α in GF(2^128)), XOR the tweaks in with vector instructions,
/// run one ECB call over the whole chunk, and XOR again. Sectors are whole multiples of the 16-byte
/// block, so ciphertext stealing never applies.
/// </summary>
internal sealed class XtsAesCipher : ISectorCipher
{
    private const int SectorBytes = LuksLimits.SectorBytes;
    private const int BlockBytes = 16;

    /// <summary>Sectors per ECB call: large enough to amortize the call, small enough for the stack's IV buffer.</summary>
    private const int ChunkSectors = 128;

    private readonly AesPool _dataKey;
    private readonly AesPool _tweakKey;
    private readonly IvGenerator _ivs;

    /// <param name="key">Two AES keys of equal length, data key first (K1 || K2), as dm-crypt and QEMU store it.</param>
    public XtsAesCipher(ReadOnlySpan<byte> key, IvGenerator ivs)
    {
        int half = key.Length / 2;
        _dataKey = new AesPool(key[..half].ToArray());
        _tweakKey = new AesPool(key[half..].ToArray());
        _ivs = ivs;
    }

    public void Encrypt(Span<byte> data, long firstSector) => Transform(data, firstSector, encrypt: true);

    public void Decrypt(Span<byte> data, long firstSector) => Transform(data, firstSector, encrypt: false);

    private void Transform(Span<byte> data, long firstSector, bool encrypt)
    {
        int chunkBytes = ChunkSectors * SectorBytes;
        byte[] tweaks = ArrayPool<byte>.Shared.Rent(Math.Min(chunkBytes, data.Length));
        Span<byte> ivs = stackalloc byte[ChunkSectors * BlockBytes];
        Aes dataAes = _dataKey.Rent();
        Aes tweakAes = _tweakKey.Rent();
        try
        {
            for (int done = 0; done < data.Length; done += chunkBytes)
            {
                Span<byte> chunk = data.Slice(done, Math.Min(chunkBytes, data.Length - done));
                Span<byte> chunkTweaks = tweaks.AsSpan(0, chunk.Length);
                FillTweaks(tweakAes, chunkTweaks, ivs, firstSector + (done / SectorBytes));
                Xor(chunk, chunkTweaks);
                if (encrypt)
                {
                    dataAes.EncryptEcb(chunk, chunk, PaddingMode.None);
                }
                else
                {
                    dataAes.DecryptEcb(chunk, chunk, PaddingMode.None);
                }

                Xor(chunk, chunkTweaks);
            }
        }
        finally
        {
            _dataKey.Return(dataAes);
            _tweakKey.Return(tweakAes);
            ArrayPool<byte>.Shared.Return(tweaks);
        }
    }

    /// <summary>Every block's tweak for the sectors that <paramref name="tweaks"/> covers.</summary>
    private void FillTweaks(Aes tweakAes, Span<byte> tweaks, Span<byte> ivScratch, long firstSector)
    {
        int sectors = (tweaks.Length + SectorBytes - 1) / SectorBytes;
        Span<byte> ivs = ivScratch[..(sectors * BlockBytes)];
        _ivs.Fill(ivs, firstSector);
        tweakAes.EncryptEcb(ivs, ivs, PaddingMode.None);
        for (int s = 0; s < sectors; s++)
        {
            ulong low = BinaryPrimitives.ReadUInt64LittleEndian(ivs[(s * BlockBytes)..]);
            ulong high = BinaryPrimitives.ReadUInt64LittleEndian(ivs[((s * BlockBytes) + 8)..]);
            int end = Math.Min(tweaks.Length, (s + 1) * SectorBytes);
            for (int offset = s * SectorBytes; offset < end; offset += BlockBytes)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(tweaks[offset..], low);
                BinaryPrimitives.WriteUInt64LittleEndian(tweaks[(offset + 8)..], high);

                // Multiply by α: a 128-bit little-endian left shift, reducing by x^128 = x^7 + x^2 + x + 1.
                ulong carry = high >> 63;
                high = (high << 1) | (low >> 63);
                low = (low << 1) ^ (carry * 0x87);
            }
        }
    }

    internal static void Xor(Span<byte> target, ReadOnlySpan<byte> other)
    {
        int i = 0;
        int width = Vector<byte>.Count;
        for (; i + width <= target.Length; i += width)
        {
            (new Vector<byte>(target[i..]) ^ new Vector<byte>(other[i..])).CopyTo(target[i..]);
        }

        for (; i < target.Length; i++)
        {
            target[i] ^= other[i];
        }
    }

    public void Dispose()
    {
        _dataKey.Dispose();
        _tweakKey.Dispose();
        _ivs.Dispose();
    }
}

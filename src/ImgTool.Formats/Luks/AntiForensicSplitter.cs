using System.Buffers.Binary;
using System.Security.Cryptography;

namespace ImgTool.Formats.Luks;

/// <summary>
/// The LUKS anti-forensic information splitter (spec section 2.4, "AF-Splitter"): a key is stored as
/// <c>stripes</c> blocks, all but the last random, so that destroying any one block destroys the key.
/// Merge: d = 0; for each of the first stripes-1 blocks, d = diffuse(d XOR block); key = d XOR last block.
/// </summary>
internal static class AntiForensicSplitter
{
    public static void Merge(ReadOnlySpan<byte> split, int stripes, LuksHash hash, Span<byte> key)
    {
        int blockBytes = key.Length;
        Span<byte> d = stackalloc byte[blockBytes];
        d.Clear();
        for (int i = 0; i < stripes - 1; i++)
        {
            Xor(d, split.Slice(i * blockBytes, blockBytes));
            Diffuse(d, hash);
        }

        split.Slice((stripes - 1) * blockBytes, blockBytes).CopyTo(key);
        Xor(key, d);
    }

    /// <summary>Fills <paramref name="split"/> (key bytes × stripes) with random blocks and the last one
    /// that makes <see cref="Merge"/> give back <paramref name="key"/>.</summary>
    public static void Split(ReadOnlySpan<byte> key, int stripes, LuksHash hash, Span<byte> split)
    {
        int blockBytes = key.Length;
        Span<byte> d = stackalloc byte[blockBytes];
        d.Clear();
        RandomNumberGenerator.Fill(split[..((stripes - 1) * blockBytes)]);
        for (int i = 0; i < stripes - 1; i++)
        {
            Xor(d, split.Slice(i * blockBytes, blockBytes));
            Diffuse(d, hash);
        }

        Span<byte> last = split.Slice((stripes - 1) * blockBytes, blockBytes);
        key.CopyTo(last);
        Xor(last, d);
    }

    /// <summary>The spec's diffuse: each digest-sized piece i (the last may be shorter) becomes
    /// H(be32(i) || piece), cut to the piece's length.</summary>
    internal static void Diffuse(Span<byte> block, LuksHash hash)
    {
        int digest = hash.DigestBytes;
        Span<byte> input = stackalloc byte[4 + digest];
        Span<byte> output = stackalloc byte[digest];
        for (int i = 0, start = 0; start < block.Length; i++, start += digest)
        {
            int length = Math.Min(digest, block.Length - start);
            BinaryPrimitives.WriteUInt32BigEndian(input, (uint)i);
            block.Slice(start, length).CopyTo(input[4..]);
            hash.Hash(input[..(4 + length)], output);
            output[..length].CopyTo(block[start..]);
        }
    }

    private static void Xor(Span<byte> target, ReadOnlySpan<byte> other)
    {
        for (int i = 0; i < target.Length; i++)
        {
            target[i] ^= other[i];
        }
    }
}

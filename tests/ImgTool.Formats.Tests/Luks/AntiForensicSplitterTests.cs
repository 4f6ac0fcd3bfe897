using System.Security.Cryptography;
using ImgTool.Formats.Luks;

namespace ImgTool.Formats.Tests.Luks;

public sealed class AntiForensicSplitterTests
{
    [Theory]
    [InlineData(32, 4000, "sha256")]
    [InlineData(64, 4000, "sha256")]
    [InlineData(16, 7, "sha1")]
    [InlineData(64, 3, "sha512")]
    [InlineData(24, 2, "sha1")]
    public void Split_then_merge_gives_the_key_back(int keyBytes, int stripes, string hashName)
    {
        LuksHash hash = LuksHash.Parse(hashName, null);
        byte[] key = RandomNumberGenerator.GetBytes(keyBytes);
        byte[] split = new byte[keyBytes * stripes];
        AntiForensicSplitter.Split(key, stripes, hash, split);
        byte[] merged = new byte[keyBytes];
        AntiForensicSplitter.Merge(split, stripes, hash, merged);
        Assert.Equal(key, merged);

        // Destroying any one stripe destroys the key: the point of the splitter.
        split[(stripes / 2) * keyBytes] ^= 1;
        AntiForensicSplitter.Merge(split, stripes, hash, merged);
        Assert.NotEqual(key, merged);
    }

    /// <summary>Two stripes by the spec's definition, computed independently: key = H(be32(0) || s0[0..32]) || H(be32(1) || s0[32..40])[0..8] XOR s1
    /// (a 40-byte block with SHA-256 has one full digest piece and one 8-byte piece).</summary>
    [Fact]
    public void Merge_follows_the_spec_diffuse()
    {
        byte[] s0 = [.. Enumerable.Range(1, 40).Select(i => (byte)i)];
        byte[] s1 = [.. Enumerable.Range(100, 40).Select(i => (byte)i)];
        byte[] expected = new byte[40];
        SHA256.HashData([0, 0, 0, 0, .. s0.AsSpan(0, 32)]).CopyTo(expected, 0);
        SHA256.HashData([0, 0, 0, 1, .. s0.AsSpan(32, 8)]).AsSpan(0, 8).CopyTo(expected.AsSpan(32));
        for (int i = 0; i < 40; i++)
        {
            expected[i] ^= s1[i];
        }

        byte[] merged = new byte[40];
        AntiForensicSplitter.Merge([.. s0, .. s1], 2, LuksHash.Sha256, merged);
        Assert.Equal(expected, merged);
    }
}

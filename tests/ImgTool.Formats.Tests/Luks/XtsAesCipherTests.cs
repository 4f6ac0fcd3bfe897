using ImgTool.Formats.Luks;

namespace ImgTool.Formats.Tests.Luks;

/// <summary>AES-XTS against the IEEE 1619-2007 test vectors (Annex B), whose data units are 32 or 512 bytes and
/// whose tweak is the data unit number, little-endian: exactly dm-crypt's plain64 IV.</summary>
public sealed class XtsAesCipherTests
{
    [Theory]
    // Vector 1: all-zero keys, unit 0.
    [InlineData("00000000000000000000000000000000", "00000000000000000000000000000000", 0L,
        "0000000000000000000000000000000000000000000000000000000000000000",
        "917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e")]
    // Vector 2.
    [InlineData("11111111111111111111111111111111", "22222222222222222222222222222222", 0x3333333333L,
        "4444444444444444444444444444444444444444444444444444444444444444",
        "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0")]
    // Vector 3.
    [InlineData("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0", "22222222222222222222222222222222", 0x3333333333L,
        "4444444444444444444444444444444444444444444444444444444444444444",
        "af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89")]
    public void Ieee1619_vectors(string key1, string key2, long unit, string plain, string cipher)
    {
        byte[] key = Convert.FromHexString(key1 + key2);
        byte[] data = Convert.FromHexString(plain);
        using var xts = new XtsAesCipher(key, IvGenerator.Plain64());
        xts.Encrypt(data, unit);
        Assert.Equal(cipher, Convert.ToHexStringLower(data));
        xts.Decrypt(data, unit);
        Assert.Equal(plain, Convert.ToHexStringLower(data));
    }

    /// <summary>Vector 4: a 512-byte unit (the whole tweak chain of a sector), with the bytes 0..255 twice.</summary>
    [Fact]
    public void Ieee1619_vector_4_full_sector()
    {
        byte[] key = Convert.FromHexString("2718281828459045235360287471352631415926535897932384626433832795");
        byte[] data = [.. Enumerable.Range(0, 512).Select(i => (byte)i)];
        using var xts = new XtsAesCipher(key, IvGenerator.Plain64());
        xts.Encrypt(data, 0);
        Assert.Equal("27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c", Convert.ToHexStringLower(data.AsSpan(0, 32)));
        xts.Decrypt(data, 0);
        Assert.Equal([.. Enumerable.Range(0, 512).Select(i => (byte)i)], data);
    }

    /// <summary>A long request is the same as one request per sector: chunking and the per-sector tweak restart agree.</summary>
    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    public void Many_sectors_at_once_equal_one_at_a_time(int keyBytes)
    {
        var random = new Random(keyBytes);
        byte[] key = new byte[keyBytes];
        random.NextBytes(key);
        byte[] plain = new byte[300 * 512];
        random.NextBytes(plain);
        using var xts = new XtsAesCipher(key, IvGenerator.Plain64());
        byte[] bulk = (byte[])plain.Clone();
        xts.Encrypt(bulk, 1000);
        for (int s = 0; s < 300; s++)
        {
            byte[] one = plain.AsSpan(s * 512, 512).ToArray();
            xts.Encrypt(one, 1000 + s);
            Assert.Equal(one, bulk.AsSpan(s * 512, 512).ToArray());
        }

        Assert.NotEqual(plain, bulk);
        xts.Decrypt(bulk, 1000);
        Assert.Equal(plain, bulk);
    }

    [Fact]
    public void Cbc_essiv_round_trips_and_depends_on_the_sector()
    {
        byte[] key = new byte[32];
        new Random(7).NextBytes(key);
        byte[] plain = new byte[4 * 512];
        using var cbc = new CbcAesCipher(key, IvGenerator.Essiv(LuksHash.Sha256, key));
        byte[] data = (byte[])plain.Clone();
        cbc.Encrypt(data, 10);
        Assert.NotEqual(data.AsSpan(0, 512).ToArray(), data.AsSpan(512, 512).ToArray());
        cbc.Decrypt(data, 10);
        Assert.Equal(plain, data);
    }
}

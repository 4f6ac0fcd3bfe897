using System.Text;
using ImgTool.Formats.Luks;

namespace ImgTool.Formats.Tests.Luks;

/// <summary>PBKDF2 as LUKS uses it, against RFC 6070 (SHA-1) and the commonly published SHA-256 vectors.</summary>
public sealed class LuksHashTests
{
    [Theory]
    [InlineData("sha1", 1u, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6")]
    [InlineData("sha1", 2u, 20, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957")]
    [InlineData("sha1", 4096u, 20, "4b007901b765489abead49d926f721d065a429c1")]
    [InlineData("sha256", 1u, 32, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")]
    [InlineData("sha256", 4096u, 32, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a")]
    public void Pbkdf2_vectors(string hashName, uint iterations, int length, string expected)
    {
        byte[] output = new byte[length];
        LuksHash.Parse(hashName, null).Pbkdf2(Encoding.ASCII.GetBytes("password"), Encoding.ASCII.GetBytes("salt"), iterations, output);
        Assert.Equal(expected, Convert.ToHexStringLower(output));
    }

    [Fact]
    public void Unknown_hash_is_refused() =>
        Assert.Throws<ImgTool.Block.Errors.UnsupportedFeatureException>(() => LuksHash.Parse("whirlpool", null));
}

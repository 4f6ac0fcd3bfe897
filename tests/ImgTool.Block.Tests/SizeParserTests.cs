using ImgTool.Block.Errors;
using ImgTool.Block.Options;

namespace ImgTool.Block.Tests;

public class SizeParserTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("512", 512L)]
    [InlineData("1k", 1024L)]
    [InlineData("1K", 1024L)]
    [InlineData("10M", 10L << 20)]
    [InlineData("1G", 1L << 30)]
    [InlineData("2T", 2L << 40)]
    [InlineData("1P", 1L << 50)]
    [InlineData("1.5G", 3L << 29)]
    [InlineData("100b", 100L)]
    public void Parses_qemu_size_syntax(string text, long expected) =>
        Assert.Equal(expected, SizeParser.Parse(text));

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("")]
    [InlineData("1.5")]
    [InlineData("G")]
    [InlineData("1X")]
    [InlineData("99999999E")]
    public void Rejects_bad_sizes_with_a_clear_message(string text)
    {
        var e = Assert.Throws<InvalidOptionException>(() => SizeParser.Parse(text, "image size"));
        Assert.Contains($"invalid image size '{text}'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0L, "0 B")]
    [InlineData(512L, "512 B")]
    [InlineData(1L << 30, "1 GiB")]
    [InlineData(3149824L, "3 MiB")]
    [InlineData(200704L, "196 KiB")]
    [InlineData(1000L * 1024, "0.977 MiB")]
    [InlineData(1536L << 20, "1.5 GiB")]
    public void Formats_like_qemu_size_to_str(long bytes, string expected) =>
        Assert.Equal(expected, SizeParser.Format(bytes));
}

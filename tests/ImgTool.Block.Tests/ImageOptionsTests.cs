using ImgTool.Block.Errors;
using ImgTool.Block.Options;

namespace ImgTool.Block.Tests;

public class ImageOptionsTests
{
    private static readonly ImageOptionSpec[] Specs =
    [
        new("size", ImageOptionKind.Size, "Virtual disk size"),
        new("preallocation", ImageOptionKind.Choice, "Preallocation mode", ["off", "full"]),
        new("lazy_refcounts", ImageOptionKind.Bool, "Postpone refcount updates"),
        new("backing_file", ImageOptionKind.String, "Backing file"),
    ];

    [Fact]
    public void Splits_pairs_across_and_within_option_strings_with_later_values_winning()
    {
        var options = ImageOptions.Parse(["size=1M,preallocation=off", "preallocation=full"]);
        Assert.Equal(1L << 20, options.GetSize("size"));
        Assert.Equal("full", options.GetString("preallocation"));
    }

    [Fact]
    public void Double_comma_is_a_literal_comma_and_a_bare_key_means_on()
    {
        var options = ImageOptions.Parse(["backing_file=a,,b.img,lazy_refcounts"]);
        Assert.Equal("a,b.img", options.GetString("backing_file"));
        Assert.True(options.GetBool("lazy_refcounts"));
    }

    [Fact]
    public void Unknown_keys_and_bad_values_are_refused()
    {
        Assert.Contains("invalid option 'bogus'", Assert.Throws<InvalidOptionException>(() => ImageOptions.Parse(["bogus=1"]).Validate(Specs, "raw")).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOptionException>(() => ImageOptions.Parse(["preallocation=sometimes"]).Validate(Specs, "raw"));
        Assert.Throws<InvalidOptionException>(() => ImageOptions.Parse(["lazy_refcounts=maybe"]).Validate(Specs, "raw"));
        Assert.Throws<InvalidOptionException>(() => ImageOptions.Parse(["size=big"]).Validate(Specs, "raw"));
    }

    [Fact]
    public void Help_is_recognised_anywhere()
    {
        Assert.True(ImageOptions.IsHelpRequest(["size=1M", "help"]));
        Assert.True(ImageOptions.IsHelpRequest(["?"]));
        Assert.False(ImageOptions.IsHelpRequest(["size=1M"]));
    }
}

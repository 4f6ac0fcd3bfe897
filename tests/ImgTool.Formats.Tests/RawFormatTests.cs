using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats;
using ImgTool.Formats.Raw;

namespace ImgTool.Formats.Tests;

public sealed class RawFormatTests : IDisposable
{
    private const long MiB = 1 << 20;
    private readonly TempDir _dir = new();
    private readonly ImageOpener _opener = new(FormatRegistry.Default);

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("off", 0L)]
    [InlineData("falloc", 8 * MiB)]
    [InlineData("full", 8 * MiB)]
    public async Task Create_honours_preallocation(string mode, long expectedAllocated)
    {
        string path = _dir.File($"{mode}.raw");
        await ImageFactory.CreateAsync(path, RawFormat.Instance, new ImageCreateRequest(8 * MiB, ImageOptions.Parse([$"preallocation={mode}"])));
        await using IImage image = await _opener.OpenAsync(path, new ImageOpenRequest("raw"));
        Assert.Equal(8 * MiB, image.SizeBytes);
        Assert.Equal(expectedAllocated, image.HostFile.AllocatedBytes);
    }

    [Fact]
    public async Task Status_comes_from_holes_and_zero_writes_punch_them()
    {
        string path = _dir.File("disk.raw");
        await ImageFactory.CreateAsync(path, RawFormat.Instance, new ImageCreateRequest(8 * MiB, ImageOptions.Empty));
        await using (IImage image = await _opener.OpenAsync(path, new ImageOpenRequest("raw", ReadOnly: false)))
        {
            await image.WriteAsync(MiB, Fill(2 * (int)MiB, 0xab));
            await image.WriteZeroesAsync(2 * MiB, MiB, BlockZeroFlags.MayUnmap);
        }

        await using IImage reader = await _opener.OpenAsync(path, new ImageOpenRequest());
        Assert.Equal("raw", reader.FormatName);
        Assert.Equal(new BlockStatus(BlockStatusKind.Zero, MiB, 0), await reader.GetStatusAsync(0, 8 * MiB));
        Assert.Equal(new BlockStatus(BlockStatusKind.Data, MiB, MiB), await reader.GetStatusAsync(MiB, 7 * MiB));
        Assert.Equal(BlockStatusKind.Zero, (await reader.GetStatusAsync(2 * MiB, 6 * MiB)).Kind);

        byte[] back = new byte[3 * MiB];
        await reader.ReadAsync(0, back);
        Assert.True(back.AsSpan(0, (int)MiB).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(back.AsSpan((int)MiB, (int)MiB).IndexOfAnyExcept((byte)0xab) < 0);
        Assert.True(back.AsSpan(2 * (int)MiB).IndexOfAnyExcept((byte)0) < 0);
    }

    [Fact]
    public async Task An_empty_file_is_not_guessed_but_opens_as_raw_when_asked()
    {
        string path = _dir.File("empty");
        await File.WriteAllBytesAsync(path, []);
        var e = await Assert.ThrowsAsync<ImageFormatException>(async () => await _opener.OpenAsync(path, new ImageOpenRequest()));
        Assert.Contains("empty file", e.Message, StringComparison.Ordinal);
        await using IImage image = await _opener.OpenAsync(path, new ImageOpenRequest("raw"));
        Assert.Equal(0, image.SizeBytes);
    }

    [Fact]
    public async Task Unknown_format_and_options_are_refused_and_leave_no_file()
    {
        string path = _dir.File("x.img");
        Assert.Throws<InvalidOptionException>(() => FormatRegistry.Default.Get("nosuch"));
        await Assert.ThrowsAsync<InvalidOptionException>(async () =>
            await ImageFactory.CreateAsync(path, RawFormat.Instance, new ImageCreateRequest(MiB, ImageOptions.Parse(["cluster_size=64k"]))));
        Assert.False(File.Exists(path));
        await Assert.ThrowsAsync<UnsupportedFeatureException>(async () =>
            await ImageFactory.CreateAsync(path, RawFormat.Instance, new ImageCreateRequest(MiB, ImageOptions.Empty, BackingFile: "base.img")));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Raw_probes_lowest_so_any_real_format_wins()
    {
        Assert.Equal(1, RawFormat.Instance.Probe(new ProbeInput(new byte[512], new byte[512], 512, "x")));
        Assert.Same(RawFormat.Instance, FormatRegistry.Default.Probe(new ProbeInput(new byte[512], new byte[512], 512, "x")));
    }

    [Theory]
    [InlineData("dir/top.qcow2", "base.raw", "dir/base.raw")]
    [InlineData("top.qcow2", "base.raw", "base.raw")]
    [InlineData("dir/top.qcow2", "/abs/base.raw", "/abs/base.raw")]
    [InlineData("dir/top.qcow2", "../base.raw", "dir/../base.raw")]
    public void Backing_names_resolve_against_the_image_folder(string image, string backing, string expected) =>
        Assert.Equal(expected, ImageOpener.ResolveBackingPath(image, backing));

    private static byte[] Fill(int length, byte value)
    {
        byte[] data = new byte[length];
        Array.Fill(data, value);
        return data;
    }
}

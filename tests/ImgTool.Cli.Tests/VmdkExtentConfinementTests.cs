using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests;

/// <summary>A descriptor is data from the image: its extents outside its folder open only when the user says so.</summary>
public sealed class VmdkExtentConfinementTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task An_extent_outside_the_folder_is_refused_unless_allowed()
    {
        Directory.CreateDirectory(_dir.File("images"));
        Directory.CreateDirectory(_dir.File("data"));
        byte[] model = SparseFile(_dir.File("data/flat.raw"), 1 << 20, (4096, 10_000));
        string descriptor = _dir.File("images/disk.vmdk");
        await File.WriteAllTextAsync(descriptor, "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\nRW 2048 FLAT \"../data/flat.raw\" 0\n");

        RunResult refused = await Imgtool("info", descriptor);
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal($"imgtool: {descriptor}: extent file '../data/flat.raw' is outside the descriptor's folder; refusing to open it (--allow-outside-extents opens it)\n", refused.Err);

        string copy = _dir.File("copy.raw");
        RunResult allowed = await Imgtool("convert", "--allow-outside-extents", "-O", "raw", descriptor, copy);
        Assert.True(allowed.ExitCode == 0, allowed.ToString());
        Assert.Equal(model, await File.ReadAllBytesAsync(copy));
    }
}

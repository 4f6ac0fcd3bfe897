using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests;

/// <summary>The read-only formats (qcow, parallels, bochs, cloop, dmg): writing to them is one clear line and a
/// non-zero exit, and no file is left behind or emptied.</summary>
public sealed class ReadOnlyFormatTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("qcow")]
    [InlineData("parallels")]
    [InlineData("bochs")]
    [InlineData("cloop")]
    [InlineData("dmg")]
    public async Task Create_and_convert_to_them_are_refused_in_one_line(string format)
    {
        string target = _dir.File("t.img");
        RunResult create = await Imgtool("create", "-f", format, target, "1M");
        Assert.NotEqual(0, create.ExitCode);
        Assert.Equal($"imgtool: {target}: '{format}' is a read-only format: imgtool reads it, but cannot create or write it\n", create.Err);
        Assert.False(File.Exists(target));

        string source = _dir.File("s.raw");
        await File.WriteAllBytesAsync(source, new byte[65536]);
        RunResult convert = await Imgtool("convert", "-O", format, source, target);
        Assert.NotEqual(0, convert.ExitCode);
        Assert.Contains("is a read-only format", convert.Err, StringComparison.Ordinal);
        Assert.Single(convert.Err.TrimEnd('\n').Split('\n'));
        Assert.False(File.Exists(target));
    }

    [Fact]
    public async Task Converting_onto_an_existing_file_leaves_it_as_it_was()
    {
        string target = _dir.File("keep.hdd");
        await File.WriteAllBytesAsync(target, [1, 2, 3]);
        string source = _dir.File("s.raw");
        await File.WriteAllBytesAsync(source, new byte[65536]);
        Assert.NotEqual(0, (await Imgtool("convert", "-O", "parallels", source, target)).ExitCode);
        Assert.Equal([1, 2, 3], await File.ReadAllBytesAsync(target));
    }

    [Fact]
    public async Task Opening_one_for_write_is_refused_and_reading_it_works()
    {
        string image = _dir.File("p.hdd");
        Ok(await QemuImg("create", "-f", "parallels", image, "4M"));
        foreach (string[] args in (string[][])[["snapshot", "-c", "s1", image], ["check", "-r", "all", image]])
        {
            RunResult write = await Imgtool(args);
            Assert.NotEqual(0, write.ExitCode);
            Assert.Equal($"imgtool: {image}: 'parallels' is a read-only format: imgtool reads it, but cannot create or write it\n", write.Err);
        }

        string raw = _dir.File("p.raw");
        Ok(await Imgtool("convert", "-O", "raw", image, raw));
        Assert.Equal(4 << 20, new FileInfo(raw).Length);
    }

    private static RunResult Ok(RunResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        return result;
    }
}

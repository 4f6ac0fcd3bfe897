using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests;

/// <summary>Every bad input: one line on stderr starting "imgtool: ", a non-zero exit, and nothing left behind.</summary>
public sealed class BadInputTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Missing_file()
    {
        string path = _dir.File("missing.img");
        foreach (string[] args in new[] { new[] { "info", path }, ["map", path], ["check", path], ["convert", path, _dir.File("out.raw")] })
        {
            RunResult r = await Imgtool(args);
            AssertOneLineError(r, $"imgtool: {path}: Could not open: No such file or directory");
        }

        Assert.False(File.Exists(_dir.File("out.raw")));
        AssertOneLineError(await Imgtool("compare", path, path), expectedExit: 2);
    }

    [Fact]
    public async Task Directory_instead_of_a_file()
    {
        AssertOneLineError(await Imgtool("info", _dir.Path), $"imgtool: {_dir.Path}: Could not open: Is a directory");
        AssertOneLineError(await Imgtool("create", _dir.Path, "1M"), $"imgtool: {_dir.Path}: Could not open: Is a directory");
    }

    [Fact]
    public async Task Zero_length_file()
    {
        string path = _dir.File("empty.img");
        await File.WriteAllBytesAsync(path, []);
        RunResult info = await Imgtool("info", path);
        AssertOneLineError(info, $"imgtool: {path}: cannot determine the format of an empty file; use -f raw to open it as an empty raw image");
        AssertOneLineError(await Imgtool("convert", path, _dir.File("out.raw")));
        Assert.False(File.Exists(_dir.File("out.raw")));
        Assert.Equal(0, (await Imgtool("info", "-f", "raw", path)).ExitCode);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("1X")]
    public async Task Bad_size(string size)
    {
        string path = _dir.File("bad.img");
        AssertOneLineError(await Imgtool("create", "-f", "raw", path, "--", size), $"imgtool: invalid image size '{size}': use a non-negative number with an optional k, M, G, T, P or E suffix (1024-based)");
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task Unknown_format()
    {
        string source = _dir.File("s.raw");
        SparseFile(source, 1 << 20);
        RunResult create = await Imgtool("create", "-f", "vmdk9", _dir.File("x.img"), "1M");
        AssertOneLineError(create);
        Assert.StartsWith("imgtool: unknown image format 'vmdk9' (known: ", create.Err, StringComparison.Ordinal);
        Assert.Contains("raw)", create.Err, StringComparison.Ordinal);
        AssertOneLineError(await Imgtool("info", "-f", "vmdk9", source));
        AssertOneLineError(await Imgtool("convert", "-O", "vmdk9", source, _dir.File("y.img")));
        Assert.False(File.Exists(_dir.File("x.img")));
        Assert.False(File.Exists(_dir.File("y.img")));
    }

    [Fact]
    public async Task Unknown_option()
    {
        string source = _dir.File("s.raw");
        SparseFile(source, 1 << 20);
        AssertOneLineError(await Imgtool("create", "-o", "cluster_size=64k", _dir.File("x.img"), "1M"), "imgtool: invalid option 'cluster_size' for format 'raw' (see -o help)");
        AssertOneLineError(await Imgtool("convert", "-o", "nonsense=1", source, _dir.File("y.img")));
        AssertOneLineError(await Imgtool("create", "-o", "preallocation=sometimes", _dir.File("z.img"), "1M"));
        Assert.Equal([_dir.File("s.raw")], Directory.GetFiles(_dir.Path));
    }

    [Fact]
    public async Task Target_in_a_read_only_directory()
    {
        string source = _dir.File("s.raw");
        SparseFile(source, 1 << 20, (0, 4096));
        using var readOnly = new ReadOnlyDir(_dir.File("ro"));
        string target = Path.Combine(readOnly.Path, "out.raw");
        RunResult convert = await Imgtool("convert", source, target);
        AssertOneLineError(convert);
        Assert.StartsWith($"imgtool: {target}: Could not open: ", convert.Err, StringComparison.Ordinal);
        AssertOneLineError(await Imgtool("create", target, "1M"));
        Assert.False(File.Exists(target));
    }

    [Fact]
    public async Task Converting_an_image_onto_itself_is_refused_and_leaves_it_intact()
    {
        string path = _dir.File("self.raw");
        byte[] model = SparseFile(path, 1 << 20, (0, 8192));
        AssertOneLineError(await Imgtool("convert", path, path), $"imgtool: {path}: the target is also a source; convert into a new file");
        Assert.Equal(model, await File.ReadAllBytesAsync(path));
    }

    [Fact]
    public async Task Unknown_command_and_bad_flags()
    {
        AssertOneLineError(await Imgtool("frobnicate"), "imgtool: unknown command 'frobnicate'", extraLines: 1);
        AssertOneLineError(await Imgtool("info", "--output", "xml", "x"), extraLines: 1);
        AssertOneLineError(await Imgtool("convert", _dir.File("only-one")));
        AssertOneLineError(await Imgtool("create"));
    }

    /// <summary>Issue 19: a misspelt option is named, with the nearest real one, not blamed on the file after it.</summary>
    [Fact]
    public async Task A_misspelt_option_is_named_with_the_nearest_one()
    {
        AssertOneLineError(await Imgtool("info", "--backing-chian", "ov.qcow2"),
            "imgtool: unknown option '--backing-chian' (did you mean '--backing-chain'?)", extraLines: 1);
        AssertOneLineError(await Imgtool("check", "--outptu", "json", "x"),
            "imgtool: unknown option '--outptu' (did you mean '--output'?)", extraLines: 1);
        AssertOneLineError(await Imgtool("map", "--zzzzzzzz", "x"), "imgtool: unknown option '--zzzzzzzz'", extraLines: 1);
        AssertOneLineError(await Imgtool("info", "-Z", "x"), "imgtool: unknown option '-Z'", extraLines: 1);

        // A negative size is an argument, not an option: resize's "-1G" still reaches the command.
        RunResult shrink = await Imgtool("resize", _dir.File("missing.qcow2"), "-1G");
        Assert.DoesNotContain("unknown option", shrink.Err, StringComparison.Ordinal);
    }

    /// <summary>Issue 18: a misspelt command gets the nearest one; convert (whose file list takes any word) names its nearest option too.</summary>
    [Fact]
    public async Task A_misspelt_command_or_convert_option_is_named_with_the_nearest_one()
    {
        AssertOneLineError(await Imgtool("conver", "a.raw", "b.qcow2"), "imgtool: unknown command 'conver' (did you mean 'convert'?)", extraLines: 1);
        AssertOneLineError(await Imgtool("snapshto", "-l", "x"), "imgtool: unknown command 'snapshto' (did you mean 'snapshot'?)", extraLines: 1);
        AssertOneLineError(await Imgtool("frobnicate"), "imgtool: unknown command 'frobnicate'", extraLines: 1);
        AssertOneLineError(await Imgtool("convert", "--ouput", "json", _dir.File("a.raw"), _dir.File("b.raw")),
            "imgtool: unknown option '--ouput' (did you mean '--output'?)");
    }

    /// <summary>The completion scripts exist for bash and zsh; another shell is refused in one line.</summary>
    [Fact]
    public async Task Completion_for_an_unknown_shell_is_refused()
    {
        AssertOneLineError(await Imgtool("completion", "fish"), "imgtool: unknown shell 'fish': use bash or zsh");
    }

    [Fact]
    public async Task Debug_adds_the_stack_trace()
    {
        RunResult r = await Imgtool("info", "--debug", _dir.File("missing"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("   at ", r.Err, StringComparison.Ordinal);
    }

    /// <summary>One error line (plus a hint line where qemu-img prints one) and a non-zero exit.</summary>
    private static void AssertOneLineError(RunResult r, string? expected = null, int expectedExit = 1, int extraLines = 0)
    {
        Assert.True(r.ExitCode == expectedExit, r.ToString());
        string[] lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1 + extraLines, r.ToString());
        Assert.StartsWith("imgtool: ", lines[0], StringComparison.Ordinal);
        if (expected is not null)
        {
            Assert.Equal(expected, lines[0]);
        }
    }
}

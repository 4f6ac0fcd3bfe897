using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ImgTool.Inspect.Tests;

/// <summary>`imgtool ls -l` and `cat` against debugfs (ext2/3/4) and mdir/mtype (FAT12/16/32) on the same images,
/// byte for byte in content and in the names, sizes, modes and owners listed; copy-out against the source tree.</summary>
public sealed partial class GuestFileTests(GuestFileImages images) : IClassFixture<GuestFileImages>
{
    public static TheoryData<string, string> ExtDirectories() => Cross(GuestFileImages.ExtCases.Select(c => c.Name), ["/", "/big", GuestFileImages.DeepDirectory, "/deep/d1", "/lost+found"]);

    public static TheoryData<string, string> ExtFiles() => Cross(
        GuestFileImages.ExtCases.Select(c => c.Name),
        ["/hello.txt", "/Long File Name With Spaces.txt", "/naïve café.txt", "/empty", "/tiny", "/random.bin", "/sparse.bin", GuestFileImages.DeepDirectory + "/leaf.txt", "/big/entry number 0399 with a long name.txt"]);

    public static TheoryData<string, string> FatDirectories() => Cross(GuestFileImages.FatCases.Select(c => c.Name), ["/", "/big", GuestFileImages.DeepDirectory, "/deep"]);

    public static TheoryData<string, string> FatFiles() => Cross(
        GuestFileImages.FatCases.Select(c => c.Name),
        ["/hello.txt", "/Long File Name With Spaces.txt", "/naïve café.txt", "/empty", "/random.bin", GuestFileImages.DeepDirectory + "/leaf.txt", "/big/entry number 0123 with a long name.txt"]);

    [Theory]
    [MemberData(nameof(ExtDirectories))]
    public async Task Ls_l_matches_debugfs(string fs, string path)
    {
        string image = images.Image(fs);
        RunResult debugfs = await HostTools.Run("debugfs", "-R", $"ls -l {path}", image);
        var expected = DebugfsLine().Matches(debugfs.Out)
            .Select(m => (Inode: long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), Mode: Convert.ToUInt32(m.Groups[2].Value, 8), Uid: m.Groups[3].Value, Gid: m.Groups[4].Value, Size: long.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture), Name: DebugfsName(m.Groups[6].Value)))
            .Where(e => e.Inode != 0 && e.Name is not ("." or ".."))
            .ToList();
        Assert.True(expected.Count > 0 || path == "/lost+found", debugfs.ToString());
        JsonElement[] mine = await LsJson($"{image}:{path}");
        Assert.Equal(expected.Select(e => e.Name), mine.Select(e => e.GetProperty("name").GetString()));
        for (int i = 0; i < expected.Count; i++)
        {
            var e = expected[i];
            JsonElement m = mine[i];
            Assert.True(e.Inode == m.GetProperty("inode").GetInt64(), e.Name);
            Assert.True(e.Mode == Convert.ToUInt32(m.GetProperty("mode").GetString(), 8), e.Name);
            Assert.True(e.Size == m.GetProperty("size").GetInt64(), e.Name);
            Assert.Equal(e.Uid, m.GetProperty("uid").GetInt64().ToString(CultureInfo.InvariantCulture));
            Assert.Equal(e.Gid, m.GetProperty("gid").GetInt64().ToString(CultureInfo.InvariantCulture));
        }

        RunResult human = await HostTools.Imgtool("ls", "-l", $"{image}:{path}");
        Assert.True(human.ExitCode == 0, human.ToString());
        Assert.Equal(expected.Count, human.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Theory]
    [MemberData(nameof(ExtFiles))]
    public async Task Cat_matches_debugfs_and_the_source(string fs, string path)
    {
        string image = images.Image(fs);
        RunResult debugfs = await HostTools.Run("debugfs", "-R", $"cat \"{path}\"", image);
        RunResult mine = await HostTools.Imgtool("cat", $"{image}:{path}");
        Assert.True(mine.ExitCode == 0, mine.ToString());
        // debugfs 1.47 prints the whole 60-byte inline area of an inline-data file, past its size: only the size is content.
        long size = long.Parse(SizeField().Match((await HostTools.Run("debugfs", "-R", $"stat \"{path}\"", image)).Out).Groups[1].Value, CultureInfo.InvariantCulture);
        byte[] expected = debugfs.Bytes;
        if (expected.Length > size && !expected.AsSpan((int)size).ContainsAnyExcept((byte)0))
        {
            expected = expected[..(int)size];
        }

        Assert.Equal(File.ReadAllBytes(images.Source + path), expected);
        Assert.True(expected.AsSpan().SequenceEqual(mine.Bytes), $"{fs}:{path}: {mine.Bytes.Length} bytes from imgtool, {expected.Length} from debugfs");
    }

    [Theory]
    [InlineData("ext2")]
    [InlineData("ext3")]
    [InlineData("ext4")]
    [InlineData("ext4-inline")]
    public async Task Symlinks_fast_and_slow_are_read_and_followed(string fs)
    {
        string image = images.Image(fs);
        JsonElement[] root = await LsJson($"{image}:/");
        foreach (string link in new[] { "fast-link", "slow-link", "dir-link" })
        {
            JsonElement entry = root.Single(e => e.GetProperty("name").GetString() == link);
            Assert.Equal("symlink", entry.GetProperty("type").GetString());
            Assert.Equal(new FileInfo(Path.Combine(images.Source, link)).LinkTarget, entry.GetProperty("target").GetString());
        }

        RunResult cat = await HostTools.Imgtool("cat", $"{image}:/fast-link");
        Assert.Equal("hello, world\n", System.Text.Encoding.UTF8.GetString(cat.Bytes));
        JsonElement[] throughLink = await LsJson($"{image}:/dir-link/");
        Assert.Equal(["d2"], throughLink.Select(e => e.GetProperty("name").GetString()));
        RunResult dangling = await HostTools.Imgtool("cat", $"{image}:/slow-link");
        Assert.Equal(1, dangling.ExitCode);
        Assert.Contains("no such file or directory", dangling.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_fixture_has_an_htree_directory_inline_data_and_a_triple_indirect_file()
    {
        RunResult htree = await HostTools.Run("debugfs", "-R", "htree /big", images.Image("ext4"));
        Assert.Contains("Root node dump", htree.Out, StringComparison.Ordinal);
        RunResult inline = await HostTools.Run("debugfs", "-R", "stat /tiny", images.Image("ext4-inline"));
        Assert.Contains("Size of inline data", inline.Out, StringComparison.Ordinal);
        RunResult blocks = await HostTools.Run("debugfs", "-R", "stat /sparse.bin", images.Image("ext2"));
        Assert.Contains("(TIND)", blocks.Out, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(FatDirectories))]
    public async Task Ls_matches_mdir(string fs, string path)
    {
        string image = images.Image(fs);
        RunResult mdir = await HostTools.Run("mdir", "-a", "-i", image, "::" + path);
        var expected = MdirLine().Matches(mdir.Out)
            .Select(m => (Name: m.Groups[4].Success && m.Groups[4].Value.Length > 0 ? m.Groups[4].Value : ShortName(m.Groups[1].Value, m.Groups[2].Value), Size: m.Groups[3].Value == "<DIR>" ? 0 : long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture), Directory: m.Groups[3].Value == "<DIR>"))
            .Where(e => e.Name is not ("." or ".."))
            .ToList();
        Assert.NotEmpty(expected);
        JsonElement[] mine = await LsJson($"{image}:{path}");
        Assert.Equal(expected.Select(e => e.Name), mine.Select(e => e.GetProperty("name").GetString()));
        Assert.Equal(expected.Select(e => e.Size), mine.Select(e => e.GetProperty("size").GetInt64()));
        Assert.Equal(expected.Select(e => e.Directory), mine.Select(e => e.GetProperty("type").GetString() == "directory"));
    }

    [Theory]
    [MemberData(nameof(FatFiles))]
    public async Task Cat_matches_mtype_and_the_source(string fs, string path)
    {
        string image = images.Image(fs);
        RunResult mtype = await HostTools.Run("mtype", "-i", image, "::" + path);
        RunResult mine = await HostTools.Imgtool("cat", $"{image}:{path}");
        Assert.True(mine.ExitCode == 0, mine.ToString());
        Assert.Equal(File.ReadAllBytes(images.FatSource + path), mtype.Bytes);
        Assert.True(mtype.Bytes.AsSpan().SequenceEqual(mine.Bytes), $"{fs}:{path}");
    }

    [Fact]
    public async Task Cat_of_the_101_MiB_file_on_fat32_matches_mtype()
    {
        string image = images.Image("fat32");
        RunResult mtype = await HostTools.Run("mtype", "-i", image, "::/sparse.bin");
        RunResult mine = await HostTools.Imgtool("cat", $"{image}:/SPARSE.BIN");
        Assert.True(mine.ExitCode == 0, mine.ToString());
        Assert.True(mtype.Bytes.AsSpan().SequenceEqual(mine.Bytes));
        Assert.Equal(new FileInfo(Path.Combine(images.Source, "sparse.bin")).Length, mine.Bytes.Length);
    }

    [Theory]
    [InlineData("1", "/random.bin", "fatsrc")]
    [InlineData("2", "/sparse.bin", "src")]
    [InlineData("2", "/big/entry number 0007 with a long name.txt", "src")]
    public async Task Partitions_of_a_qcow2_disk_are_named_by_number(string partition, string path, string source)
    {
        string qcow2 = Path.ChangeExtension(images.Disk, "qcow2");
        RunResult mine = await HostTools.Imgtool("cat", $"{qcow2}:{partition}:{path}");
        Assert.True(mine.ExitCode == 0, mine.ToString());
        Assert.Equal(File.ReadAllBytes(Path.Combine(images.Folder, source) + path), mine.Bytes);
        RunResult unnamed = await HostTools.Imgtool("cat", $"{qcow2}:{path}");
        Assert.Equal(1, unnamed.ExitCode);
        Assert.Contains("name a partition", unnamed.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ext4", "src")]
    [InlineData("ext2", "src")]
    [InlineData("fat16", "fatsrc")]
    public async Task Copy_out_of_the_root_reproduces_the_source_tree(string fs, string source)
    {
        using var target = new TempDir();
        string destination = Path.Combine(target.Path, "out");
        RunResult result = await HostTools.Imgtool("copy-out", $"{images.Image(fs)}:/", destination);
        Assert.True(result.ExitCode == 0, result.ToString());
        if (Directory.Exists(Path.Combine(destination, "lost+found")))
        {
            Directory.Delete(Path.Combine(destination, "lost+found"));
        }

        RunResult diff = await HostTools.RunUnchecked("diff", "-r", "--no-dereference", Path.Combine(images.Folder, source), destination);
        Assert.True(diff.ExitCode == 0, diff.ToString());
        RunResult again = await HostTools.Imgtool("copy-out", $"{images.Image(fs)}:/hello.txt", destination);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("already exists", again.Err, StringComparison.Ordinal);
    }

    /// <summary>debugfs prints bytes outside printable ASCII as \xNN; the name is those bytes in UTF-8.</summary>
    private static string DebugfsName(string printed)
    {
        var bytes = new List<byte>();
        for (int i = 0; i < printed.Length; i++)
        {
            if (printed[i] == '\\' && i + 3 < printed.Length && printed[i + 1] == 'x')
            {
                bytes.Add(Convert.ToByte(printed.Substring(i + 2, 2), 16));
                i += 3;
            }
            else
            {
                bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(printed[i].ToString()));
            }
        }

        return System.Text.Encoding.UTF8.GetString(bytes.ToArray()).TrimEnd('\r');
    }

    private static string ShortName(string baseName, string extension) =>
        extension.Trim().Length > 0 ? $"{baseName.Trim()}.{extension.Trim()}" : baseName.Trim();

    private static async Task<JsonElement[]> LsJson(string target)
    {
        RunResult result = await HostTools.Imgtool("ls", "--output", "json", target);
        Assert.True(result.ExitCode == 0, result.ToString());
        return JsonDocument.Parse(result.Out).RootElement.EnumerateArray().Select(e => e.Clone()).ToArray();
    }

    private static TheoryData<string, string> Cross(IEnumerable<string> a, string[] b)
    {
        var data = new TheoryData<string, string>();
        foreach (string x in a)
        {
            foreach (string y in b)
            {
                data.Add(x, y);
            }
        }

        return data;
    }

    // debugfs's ls -l: inode, octal mode, (file type), uid, gid, size, date, time, name.
    [GeneratedRegex(@"^\s*(\d+)\s+(\d+)\s+\(\d+\)\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+ (.*)$", RegexOptions.Multiline)]
    private static partial Regex DebugfsLine();

    // mdir: 8.3 name, size or <DIR>, date, time, then the long name if there is one.
    [GeneratedRegex(@"^(.{8}) (.{3}) +(<DIR>|\d+) +\d{4}-\d\d-\d\d +\d+:\d\d(?: +(\S.*?))?\s*$", RegexOptions.Multiline)]
    private static partial Regex MdirLine();

    [GeneratedRegex(@"Size: (\d+)")]
    private static partial Regex SizeField();
}

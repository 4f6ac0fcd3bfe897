using System.Security.Cryptography;

namespace ImgTool.Inspect.Tests;

/// <summary>The commands' one-line errors and exit codes on bad input, and that nothing they do changes the image.</summary>
public sealed class CliBadInputTests : IDisposable
{
    private readonly TempDir dir = new();
    private readonly string disk;

    public CliBadInputTests()
    {
        // An MBR disk: partition 1 ext4 (a file and a directory), partition 2 swap; then as qcow2.
        string root = dir.File("root");
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.WriteAllText(Path.Combine(root, "etc", "hostname"), "guest\n");
        string fs = dir.File("fs.ext4");
        string swap = dir.File("fs.swap");
        string raw = dir.File("disk.raw");
        HostTools.Run("truncate", "-s", "16M", fs, swap, raw).GetAwaiter().GetResult();
        HostTools.Run("truncate", "-s", "40M", raw).GetAwaiter().GetResult();
        HostTools.Run("mke2fs", "-q", "-t", "ext4", "-d", root, fs).GetAwaiter().GetResult();
        HostTools.Shell($"mkswap '{swap}' >/dev/null 2>&1 && printf 'label: dos\\n2048,16M,83\\n,16M,82\\n' | sfdisk -q '{raw}'").GetAwaiter().GetResult();
        HostTools.CopyInto(fs, raw, 2048 * 512);
        HostTools.CopyInto(swap, raw, (2048 + 32768) * 512);
        disk = dir.File("disk.qcow2");
        HostTools.Run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, disk).GetAwaiter().GetResult();
    }

    public void Dispose() => dir.Dispose();

    [Theory]
    [InlineData("ls", "{DISK}:1:/nothing", "/nothing: no such file or directory")]
    [InlineData("ls", "{DISK}:1:/etc/hostname/x", "/etc/hostname/x: hostname is not a directory")]
    [InlineData("cat", "{DISK}:1:/etc", "/etc: not a regular file")]
    [InlineData("cat", "{DISK}:9:/etc/hostname", "the image has no partition 9 (partitions: 1 ext4, 2 swap)")]
    [InlineData("cat", "{DISK}:2:/etc/hostname", "partition 2 holds swap; imgtool reads files from ext2/3/4 and FAT only")]
    [InlineData("ls", "{DISK}", "names no path inside the image: use IMAGE:/PATH or IMAGE:PARTITION:/PATH")]
    [InlineData("cat", "{DIR}/missing.qcow2:/x", "missing.qcow2")]
    [InlineData("inspect", "{DIR}/empty.img", "cannot determine the format of an empty file")]
    public async Task Bad_input_is_one_line_and_exit_1(string command, string target, string message)
    {
        File.WriteAllBytes(dir.File("empty.img"), []);
        string before = Hash(disk);
        RunResult result = await HostTools.Imgtool(command, target.Replace("{DISK}", disk, StringComparison.Ordinal).Replace("{DIR}", dir.Path, StringComparison.Ordinal));
        Assert.Equal(1, result.ExitCode);
        Assert.Single(result.Err.Trim().Split('\n'));
        Assert.StartsWith("imgtool: ", result.Err, StringComparison.Ordinal);
        Assert.Contains(message, result.Err, StringComparison.Ordinal);
        Assert.Empty(result.Bytes);
        Assert.Equal(before, Hash(disk));
    }

    [Fact]
    public async Task Reading_never_changes_the_image_and_works_on_a_locked_one_with_U()
    {
        string before = Hash(disk);
        Assert.Equal(0, (await HostTools.Imgtool("inspect", disk)).ExitCode);
        Assert.Equal(0, (await HostTools.Imgtool("ls", "-l", $"{disk}:1:/etc")).ExitCode);
        RunResult cat = await HostTools.Imgtool("cat", "-U", $"{disk}:1:/etc/hostname");
        Assert.Equal("guest\n", System.Text.Encoding.UTF8.GetString(cat.Bytes));
        Assert.Equal(before, Hash(disk));
    }

    [Fact]
    public async Task Ls_l_prints_mode_links_owner_size_time_name()
    {
        RunResult ls = await HostTools.Imgtool("ls", "-l", $"{disk}:1:/etc");
        Assert.Matches(@"^-rw-r--r--   1     0     0            6 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d hostname\n$", ls.Out);
        RunResult plain = await HostTools.Imgtool("ls", $"{disk}:1:/");
        Assert.Equal("lost+found\netc\n", plain.Out);
    }

    [Fact]
    public async Task Copy_out_writes_a_file_into_a_folder_and_reports_it()
    {
        string target = dir.File("out");
        Directory.CreateDirectory(target);
        RunResult copy = await HostTools.Imgtool("copy-out", "--output", "json", $"{disk}:1:/etc/hostname", target);
        Assert.True(copy.ExitCode == 0, copy.ToString());
        Assert.Equal("guest\n", File.ReadAllText(Path.Combine(target, "hostname")));
        Assert.Contains("\"bytes\": 6", copy.Out, StringComparison.Ordinal);
    }

    private static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
}

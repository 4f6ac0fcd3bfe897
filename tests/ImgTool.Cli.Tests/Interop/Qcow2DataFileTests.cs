using System.Text.Json;
using ImgTool.Block.Devices;
using ImgTool.Formats;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// qcow2 external data files (data_file, data_file_raw) against the real qemu-img and qemu-io, both ways.
/// Data file names are relative and qemu runs in the images' folder: qemu-img 7.2 resolves them against its
/// working directory, imgtool against the image's folder.
/// </summary>
public sealed class Qcow2DataFileTests : IDisposable
{
    private const long MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> QemuVariants =>
    [
        "",
        "data_file_raw=on",
        "cluster_size=4k",
        "extended_l2=on",
        "extended_l2=on,cluster_size=128k,data_file_raw=on",
    ];

    [Theory]
    [MemberData(nameof(QemuVariants))]
    public async Task We_read_map_check_and_write_what_qemu_wrote(string options)
    {
        string image = _dir.File("theirs.qcow2");
        string dataFile = _dir.File("theirs.data");
        long size = 16 * MiB;
        await QemuImgHere("create", "-f", "qcow2", "-o", Join("data_file=theirs.data", options), "theirs.qcow2", "16M");
        await QemuIoHere("theirs.qcow2", "write -P 0x11 0 3M", "write -P 0x22 1000000 5000", "write -z 4M 1M", "discard 64k 64k",
            "write -P 0x33 12M 1k", "write -z 2M 100k", "write -P 0x44 15M 1M");

        string theirs = _dir.File("theirs.raw");
        string ours = _dir.File("ours.raw");
        await QemuImgHere("convert", "-O", "raw", "theirs.qcow2", "theirs.raw");
        RunResult convert = await Imgtool("convert", "-O", "raw", image, ours);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(await File.ReadAllBytesAsync(theirs), await File.ReadAllBytesAsync(ours));

        await AssertAgreesWithQemuAsync(image);

        // Writing through imgtool keeps the image valid for qemu, and a raw data file stays the disk itself.
        await Qcow2Interop.RandomWritesAsync(image, theirs, size, seed: options.Length, backing: false, compressed: false);
        await AssertQemuCleanAsync(image);
        await QemuImgHere("compare", "-f", "raw", "-F", "qcow2", "theirs.raw", "theirs.qcow2");
        if (options.Contains("data_file_raw=on", StringComparison.Ordinal))
        {
            Assert.Equal(await File.ReadAllBytesAsync(theirs), await File.ReadAllBytesAsync(dataFile));
        }
    }

    public static TheoryData<string> OurVariants =>
    [
        "",
        "data_file_raw=on",
        "cluster_size=512",
        "extended_l2=on",
        "extended_l2=on,cluster_size=32k,data_file_raw=on",
        "preallocation=metadata",
        "preallocation=falloc,data_file_raw=on",
        "preallocation=full,cluster_size=4k,refcount_bits=1",
        "lazy_refcounts=on,compression_type=zstd",
    ];

    [Theory]
    [MemberData(nameof(OurVariants))]
    public async Task Images_we_convert_pass_qemu_check_compare_info_and_map(string options)
    {
        long size = (6 * MiB) + 4096;
        byte[] model = SparseFile(_dir.File("model.raw"), size, (0, 5000), (70_000, 200_000), (1 * MiB, 3 * (int)MiB), (6 * MiB, 4096));
        string image = _dir.File("ours.qcow2");
        RunResult convert = await Imgtool("convert", "-O", "qcow2", "-o", Join("data_file=ours.data", options), _dir.File("model.raw"), image);
        Assert.True(convert.ExitCode == 0, convert.ToString());

        await AssertQemuCleanAsync(image);
        await QemuImgHere("compare", "-f", "raw", "-F", "qcow2", "model.raw", "ours.qcow2");
        if (options.Contains("data_file_raw=on", StringComparison.Ordinal))
        {
            // The data file alone is the disk: qemu-img compares it as raw with the model.
            await QemuImgHere("compare", "-f", "raw", "-F", "raw", "model.raw", "ours.data");
            Assert.Equal(size, new FileInfo(_dir.File("ours.data")).Length);
        }

        // Only metadata in the image file; the data is in the data file.
        Assert.True(new FileInfo(image).Length < 1 * MiB, $"image file is {new FileInfo(image).Length} bytes");
        Assert.Equal(model, await ReadThroughImgtoolAsync(image));
        await AssertAgreesWithQemuAsync(image);
    }

    [Fact]
    public async Task Backing_file_with_a_data_file_works_both_ways()
    {
        long size = 8 * MiB;
        byte[] baseData = SparseFile(_dir.File("base.raw"), size, (0, 3 * (int)MiB), (5 * MiB, 1000));
        await QemuImgHere("convert", "-O", "qcow2", "base.raw", "base.qcow2");

        // Ours over theirs: partial clusters are completed from the backing file into the data file.
        RunResult create = await Imgtool("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "-o", "data_file=top.data", _dir.File("top.qcow2"));
        Assert.True(create.ExitCode == 0, create.ToString());
        string model = _dir.File("model.raw");
        await File.WriteAllBytesAsync(model, baseData);
        await Qcow2Interop.RandomWritesAsync(_dir.File("top.qcow2"), model, size, seed: 3, backing: true, compressed: false);
        await AssertQemuCleanAsync(_dir.File("top.qcow2"));
        await QemuImgHere("compare", "-f", "raw", "-F", "qcow2", "model.raw", "top.qcow2");
        Assert.Equal(await File.ReadAllBytesAsync(model), await ReadThroughImgtoolAsync(_dir.File("top.qcow2")));
        await AssertAgreesWithQemuAsync(_dir.File("top.qcow2"));

        // Theirs: qemu-io writes part of a cluster over the backing file.
        await QemuImgHere("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "-o", "data_file=qtop.data", "qtop.qcow2");
        await QemuIoHere("qtop.qcow2", "write -P 0x5a 100000 3000", "write -P 0x5b 6M 70000", "write -z 2M 64k");
        await QemuImgHere("convert", "-O", "raw", "qtop.qcow2", "qtop.raw");
        Assert.Equal(await File.ReadAllBytesAsync(_dir.File("qtop.raw")), await ReadThroughImgtoolAsync(_dir.File("qtop.qcow2")));
        await AssertAgreesWithQemuAsync(_dir.File("qtop.qcow2"));
    }

    [Fact]
    public async Task An_existing_data_file_is_emptied_and_sized_as_qemu_img_does()
    {
        await File.WriteAllTextAsync(_dir.File("theirs.data"), "old content");
        await File.WriteAllTextAsync(_dir.File("ours.data"), "old content");
        await QemuImgHere("create", "-f", "qcow2", "-o", "data_file=theirs.data", "theirs.qcow2", "1M");
        RunResult create = await Imgtool("create", "-f", "qcow2", "-o", "data_file=ours.data", _dir.File("ours.qcow2"), "1M");
        Assert.True(create.ExitCode == 0, create.ToString());
        Assert.Equal(await File.ReadAllBytesAsync(_dir.File("theirs.data")), await File.ReadAllBytesAsync(_dir.File("ours.data")));
        Assert.Equal(MiB, new FileInfo(_dir.File("ours.data")).Length);
    }

    [Fact]
    public async Task A_missing_data_file_is_one_clear_line()
    {
        await QemuImgHere("create", "-f", "qcow2", "-o", "data_file=gone.data", "disk.qcow2", "1M");
        File.Delete(_dir.File("gone.data"));
        string image = _dir.File("disk.qcow2");
        foreach (string[] command in new[] { new[] { "info", image }, ["convert", "-O", "raw", image, _dir.File("out.raw")], ["check", image] })
        {
            RunResult result = await Imgtool(command);
            Assert.NotEqual(0, result.ExitCode);
            Assert.Equal($"imgtool: {image}: external data file 'gone.data': Could not open: No such file or directory\n", result.Err);
        }

        Assert.False(File.Exists(_dir.File("out.raw")));
    }

    [Fact]
    public async Task A_data_file_outside_the_folder_is_refused_unless_allowed()
    {
        Directory.CreateDirectory(_dir.File("images"));
        Directory.CreateDirectory(_dir.File("data"));
        string folder = _dir.File("images");
        RunResult made = await QemuIn(folder, "qemu-img", "create", "-f", "qcow2", "-o", "data_file=../data/disk.data", "disk.qcow2", "1M");
        Assert.True(made.ExitCode == 0, made.ToString());
        RunResult written = await QemuIn(folder, "qemu-io", "-c", "write -P 0x77 0 100k", "disk.qcow2");
        Assert.True(written.ExitCode == 0, written.ToString());
        string image = _dir.File("images/disk.qcow2");

        RunResult refused = await Imgtool("info", image);
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal($"imgtool: {image}: external data file '../data/disk.data' is outside the image's folder; refusing to use it (--allow-outside-extents allows it)\n", refused.Err);

        RunResult allowed = await Imgtool("convert", "--allow-outside-extents", "-O", "raw", image, _dir.File("copy.raw"));
        Assert.True(allowed.ExitCode == 0, allowed.ToString());
        byte[] copy = await File.ReadAllBytesAsync(_dir.File("copy.raw"));
        Assert.All(copy.AsSpan(0, 100 * 1024).ToArray(), b => Assert.Equal(0x77, b));
        Assert.All(copy.AsSpan(100 * 1024).ToArray(), b => Assert.Equal(0, b));

        // Create refuses such a name too, rather than make an image that later opens refuse.
        RunResult create = await Imgtool("create", "-f", "qcow2", "-o", "data_file=../data/new.data", _dir.File("images/new.qcow2"), "1M");
        Assert.Equal(1, create.ExitCode);
        Assert.False(File.Exists(_dir.File("images/new.qcow2")));
        Assert.False(File.Exists(_dir.File("data/new.data")));
        Assert.Equal(0, (await Imgtool("create", "--allow-outside-extents", "-f", "qcow2", "-o", "data_file=../data/new.data", _dir.File("images/new.qcow2"), "1M")).ExitCode);
        Assert.True(File.Exists(_dir.File("data/new.data")));
    }

    [Fact]
    public async Task Snapshots_and_compression_are_refused_clearly_and_leave_nothing_behind()
    {
        await QemuImgHere("create", "-f", "qcow2", "-o", "data_file=disk.data", "disk.qcow2", "1M");
        string image = _dir.File("disk.qcow2");
        RunResult snapshot = await Imgtool("snapshot", "-c", "s1", image);
        Assert.Equal(1, snapshot.ExitCode);
        Assert.Equal($"imgtool: {image}: internal snapshots are not supported in an image with an external data file\n", snapshot.Err);
        Assert.NotEqual(0, (await QemuImgIn("snapshot", "-c", "s1", "disk.qcow2")).ExitCode);
        await AssertQemuCleanAsync(image);

        string target = _dir.File("c.qcow2");
        RunResult compressed = await Imgtool("convert", "-c", "-O", "qcow2", "-o", "data_file=c.data", image, target);
        Assert.Equal(1, compressed.ExitCode);
        Assert.Equal($"imgtool: {target}: compression (-c) is not supported by format 'qcow2' with these options\n", compressed.Err);
        Assert.False(File.Exists(target));
        Assert.False(File.Exists(_dir.File("c.data")));

        RunResult rawOnly = await Imgtool("create", "-f", "qcow2", "-o", "data_file_raw=on", _dir.File("r.qcow2"), "1M");
        Assert.Equal($"imgtool: {_dir.File("r.qcow2")}: data-file-raw requires data-file\n", rawOnly.Err);
        Assert.False(File.Exists(_dir.File("r.qcow2")));
    }

    private static string Join(string first, string rest) => rest.Length == 0 ? first : first + "," + rest;

    private Task<RunResult> QemuImgIn(params string[] args) => QemuIn(_dir.Path, "qemu-img", args);

    private async Task QemuImgHere(params string[] args)
    {
        RunResult result = await QemuImgIn(args);
        Assert.True(result.ExitCode == 0, $"qemu-img {string.Join(' ', args)}: {result}");
    }

    private async Task QemuIoHere(string image, params string[] commands)
    {
        var args = new List<string> { "-f", "qcow2" };
        foreach (string command in commands)
        {
            args.Add("-c");
            args.Add(command);
        }

        args.Add(image);
        RunResult result = await QemuIn(_dir.Path, "qemu-io", [.. args]);
        Assert.True(result.ExitCode == 0 && !result.Out.Contains("error", StringComparison.OrdinalIgnoreCase), result.ToString());
    }

    private async Task AssertQemuCleanAsync(string image)
    {
        RunResult check = await QemuImgIn("check", image);
        Assert.True(check.ExitCode == 0 && check.Out.StartsWith("No errors were found on the image.", StringComparison.Ordinal), check.ToString());
    }

    /// <summary>check (text and JSON), info's format-specific block (text and JSON) and map (JSON, and the text with the
    /// data file named) are what qemu-img says.</summary>
    private async Task AssertAgreesWithQemuAsync(string image)
    {
        RunResult theirCheck = await QemuImgIn("check", image);
        RunResult ourCheck = await Imgtool("check", image);
        Assert.Equal(theirCheck.ExitCode, ourCheck.ExitCode);
        Assert.Equal(theirCheck.Out, ourCheck.Out);
        using (JsonDocument theirs = JsonDocument.Parse((await QemuImgIn("check", "--output=json", image)).Out))
        using (JsonDocument ours = JsonDocument.Parse((await Imgtool("check", "--output=json", image)).Out))
        {
            Assert.Equal(
                theirs.RootElement.EnumerateObject().Select(p => $"{p.Name}={p.Value}").Order(StringComparer.Ordinal),
                ours.RootElement.EnumerateObject().Select(p => $"{p.Name}={p.Value}").Order(StringComparer.Ordinal));
        }

        using (JsonDocument theirs = JsonDocument.Parse((await QemuImgIn("info", "--output=json", image)).Out))
        using (JsonDocument ours = JsonDocument.Parse((await Imgtool("info", "--output=json", image)).Out))
        {
            Assert.Equal(theirs.RootElement.GetProperty("format-specific").ToString(), ours.RootElement.GetProperty("format-specific").ToString());
        }

        Assert.Equal(FormatSpecificLines((await QemuImgIn("info", image)).Out), FormatSpecificLines((await Imgtool("info", image)).Out));
        Assert.Equal((await QemuImgIn("map", "--output=json", image)).Out, (await Imgtool("map", "--output=json", image)).Out);

        // qemu names the data file as the image stores it (it opened it from its working directory, the folder).
        string ourMap = (await Imgtool("map", image)).Out.Replace(_dir.Path + "/", string.Empty, StringComparison.Ordinal);
        string theirMap = (await QemuImgIn("map", image)).Out.Replace(_dir.Path + "/", string.Empty, StringComparison.Ordinal);
        Assert.Equal(theirMap, ourMap);
        Assert.Contains(".data", ourMap, StringComparison.Ordinal);

        static string FormatSpecificLines(string info) => info[info.IndexOf("Format specific information:", StringComparison.Ordinal)..];
    }

    private async Task<byte[]> ReadThroughImgtoolAsync(string image)
    {
        string copy = image + ".imgtool.raw";
        RunResult convert = await Imgtool("convert", "-O", "raw", image, copy);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        byte[] bytes = await File.ReadAllBytesAsync(copy);
        File.Delete(copy);
        return bytes;
    }
}

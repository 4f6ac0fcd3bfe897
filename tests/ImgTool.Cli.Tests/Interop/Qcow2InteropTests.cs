using System.Text.Json;
using ImgTool.Block.Devices;
using ImgTool.Formats;
using static ImgTool.Cli.Tests.Interop.Qcow2Interop;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>qcow2 images checked against the real qemu-img / qemu-io in both directions.</summary>
public sealed class Qcow2InteropTests : IDisposable
{
    private const long MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> WriteMatrix =>
    [
        "compat=0.10,cluster_size=512",
        "compat=0.10,cluster_size=4k",
        "compat=0.10,cluster_size=64k",
        "compat=0.10,cluster_size=2M",
        "compat=1.1,cluster_size=512,refcount_bits=1",
        "compat=1.1,cluster_size=4k,refcount_bits=64",
        "compat=1.1,cluster_size=64k,refcount_bits=16,lazy_refcounts=on",
        "compat=1.1,cluster_size=2M,refcount_bits=1",
        "compat=1.1,cluster_size=64k,extended_l2=on",
        "compat=1.1,cluster_size=2M,extended_l2=on,refcount_bits=64",
        "compat=1.1,cluster_size=64k,compression_type=zstd",
        "compat=1.1,cluster_size=4k,compression_type=zstd,lazy_refcounts=on",
        "compat=1.1,cluster_size=64k,preallocation=metadata",
        "compat=1.1,cluster_size=64k,preallocation=falloc,extended_l2=on",
        "compat=0.10,cluster_size=64k,preallocation=full",
        "compat=1.1,cluster_size=64k,data_file=ours.data",
        "compat=1.1,cluster_size=16k,extended_l2=on,data_file=ours.data,data_file_raw=on",
    ];

    [Theory]
    [MemberData(nameof(WriteMatrix))]
    public async Task Images_we_write_pass_qemu_img_check_and_compare(string options)
    {
        string image = _dir.File("ours.qcow2");
        string model = _dir.File("model.raw");
        long size = (24 * MiB) + 4096;
        Assert.Equal(0, (await Imgtool("create", "-f", "qcow2", "-o", options, image, size.ToString(System.Globalization.CultureInfo.InvariantCulture))).ExitCode);
        bool dataFile = options.Contains("data_file=", StringComparison.Ordinal);
        await RandomWritesAsync(image, model, size, seed: options.GetHashCode(StringComparison.Ordinal), backing: false, compressed: !dataFile);

        // qemu-img 7.2 resolves a relative data file name against its working directory.
        RunResult check = await QemuIn(_dir.Path, "qemu-img", "check", image);
        Assert.True(check.ExitCode == 0, check.ToString());
        RunResult compare = await QemuIn(_dir.Path, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", model, image);
        Assert.True(compare.ExitCode == 0, compare.ToString());
        if (options.Contains("data_file_raw=on", StringComparison.Ordinal))
        {
            Assert.Equal(await File.ReadAllBytesAsync(model), await File.ReadAllBytesAsync(_dir.File("ours.data")));
        }
    }

    [Theory]
    [InlineData(1, "compat=1.1")]
    [InlineData(3, "compat=1.1")]
    [InlineData(3, "compat=0.10")]
    [InlineData(3, "compat=1.1,extended_l2=on,cluster_size=16k")]
    public async Task Overlays_we_write_copy_partial_clusters_from_the_chain(int depth, string options)
    {
        long size = 8 * MiB;
        string below = _dir.File("base.qcow2");
        byte[] baseData = SparseFile(_dir.File("base.raw"), size, (0, 3 * (int)MiB), (5 * MiB, 1000));
        Assert.Equal(0, (await QemuImg("convert", "-O", "qcow2", _dir.File("base.raw"), below)).ExitCode);
        for (int level = 1; level < depth; level++)
        {
            string mid = _dir.File($"mid{level}.qcow2");
            Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", "-b", Path.GetFileName(below), "-F", "qcow2", mid)).ExitCode);
            Assert.Equal(0, (await Qemu("qemu-io", "-c", $"write -P {level} {level * 300_000} 70000", mid)).ExitCode);
            new Span<byte>(baseData, level * 300_000, 70000).Fill((byte)level);
            below = mid;
        }

        string top = _dir.File("top.qcow2");
        Assert.Equal(0, (await Imgtool("create", "-f", "qcow2", "-o", options, "-b", Path.GetFileName(below), "-F", "qcow2", top)).ExitCode);
        string model = _dir.File("model.raw");
        await File.WriteAllBytesAsync(model, baseData);
        await RandomWritesAsync(top, model, size, seed: depth, backing: true);
        await AssertQemuCleanAsync(top);
        RunResult compare = await QemuImg("compare", "-f", "raw", "-F", "qcow2", model, top);
        Assert.True(compare.ExitCode == 0, compare.ToString());
        Assert.Equal(0, (await Imgtool("compare", "-f", "raw", "-F", "qcow2", model, top)).ExitCode);
    }

    public static TheoryData<string> ReadMatrix =>
    [
        "compat=0.10",
        "compat=0.10,cluster_size=512",
        "compat=1.1,cluster_size=4k,refcount_bits=1",
        "compat=1.1,cluster_size=2M,refcount_bits=64",
        "compat=1.1,extended_l2=on",
        "compat=1.1,compression_type=zstd",
        "compat=1.1,lazy_refcounts=on",
        "compat=1.1,preallocation=metadata",
    ];

    [Theory]
    [MemberData(nameof(ReadMatrix))]
    public async Task We_read_and_check_what_qemu_wrote(string options)
    {
        string image = _dir.File("theirs.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", "-o", options, image, "16M")).ExitCode);
        await QemuIo(image, "write -P 0x11 0 3M", "write -P 0x22 1000000 5000", "write -z 4M 1M", "discard 0 64k");
        if (!options.Contains("preallocation", StringComparison.Ordinal))
        {
            // qemu writes compressed clusters only where nothing is allocated yet.
            await QemuIo(image, "write -c -P 0x33 8M 2M");
        }

        // Internal snapshots need refcounts above one.
        bool snapshots = !options.Contains("refcount_bits=1", StringComparison.Ordinal);
        if (snapshots)
        {
            Assert.Equal(0, (await QemuImg("snapshot", "-c", "snap1", image)).ExitCode);
        }

        await QemuIo(image, "write -P 0x44 100000 200000", "write -z 2M 128k", "write -P 0x55 12M 1k");
        if (snapshots)
        {
            Assert.Equal(0, (await QemuImg("snapshot", "-c", "snap2", image)).ExitCode);
        }

        await QemuIo(image, "write -P 0x66 0 4k");

        string theirs = _dir.File("theirs.raw");
        string ours = _dir.File("ours.raw");
        Assert.Equal(0, (await QemuImg("convert", "-O", "raw", image, theirs)).ExitCode);
        RunResult convert = await Imgtool("convert", "-O", "raw", image, ours);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(await File.ReadAllBytesAsync(theirs), await File.ReadAllBytesAsync(ours));

        await AssertChecksAgreeAsync(image);

        // Writing through imgtool keeps the snapshots' clusters intact: qemu-img still checks clean.
        await RandomWritesAsync(image, theirs, 16 * MiB, seed: 7, backing: true);
        await AssertQemuCleanAsync(image);
        Assert.Equal(0, (await QemuImg("compare", "-f", "raw", "-F", "qcow2", theirs, image)).ExitCode);
    }

    [Theory]
    [InlineData("compat=0.10")]
    [InlineData("compat=1.1,lazy_refcounts=on,compression_type=zstd")]
    [InlineData("compat=1.1,extended_l2=on,refcount_bits=64,cluster_size=32k")]
    public async Task Info_agrees_with_qemu_img(string options)
    {
        string image = _dir.File("info.qcow2");
        Assert.Equal(0, (await Imgtool("create", "-f", "qcow2", "-o", options, image, "16M")).ExitCode);
        using JsonDocument theirs = JsonDocument.Parse((await QemuImg("info", "--output=json", image)).Out);
        RunResult ours = await Imgtool("info", "--output=json", image);
        Assert.Equal(0, ours.ExitCode);
        using JsonDocument mine = JsonDocument.Parse(ours.Out);
        foreach (JsonProperty field in theirs.RootElement.EnumerateObject())
        {
            Assert.True(mine.RootElement.TryGetProperty(field.Name, out JsonElement value), $"missing field {field.Name}");
            Assert.Equal(field.Value.ToString(), value.ToString());
        }
    }

    [Fact]
    public async Task Info_of_an_overlay_with_snapshots_is_the_same_text_as_qemu_img()
    {
        string baseImage = _dir.File("base.qcow2");
        string overlay = _dir.File("overlay.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-q", "-f", "qcow2", baseImage, "8M")).ExitCode);
        await QemuIo(baseImage, "write -P 1 0 1M");
        Assert.Equal(0, (await QemuImg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", overlay)).ExitCode);
        await QemuIo(overlay, "write -P 2 512k 1M");
        foreach (bool withSnapshot in new[] { false, true })
        {
            if (withSnapshot)
            {
                Assert.Equal(0, (await QemuImg("snapshot", "-c", "s1", overlay)).ExitCode);
            }

            foreach (string[] args in new[] { new[] { "info", overlay }, ["info", "--output=json", overlay], ["info", "--backing-chain", overlay], ["info", "--backing-chain", "--output=json", overlay] })
            {
                RunResult theirs = await QemuImg(args);
                RunResult ours = await Imgtool(args);
                Assert.True(ours.ExitCode == 0, ours.ToString());
                Assert.Equal(theirs.Out, ours.Out);
            }
        }
    }

    [Theory]
    [InlineData("compat=1.1")]
    [InlineData("compat=0.10,cluster_size=4k")]
    [InlineData("compat=1.1,extended_l2=on,refcount_bits=64")]
    public async Task Snapshots_interoperate_with_qemu_img(string options)
    {
        string image = _dir.File("snap.qcow2");
        Assert.Equal(0, (await Imgtool("create", "-f", "qcow2", "-o", options, image, "8M")).ExitCode);
        await QemuIo(image, "write -P 0x11 0 1M", "write -c -P 0x12 2M 64k");
        string first = _dir.File("first.raw");
        Assert.Equal(0, (await QemuImg("convert", "-O", "raw", image, first)).ExitCode);

        Assert.Equal(0, (await Imgtool("snapshot", "-c", "ours", image)).ExitCode);
        await QemuIo(image, "write -P 0x22 500k 1M", "write -z 2M 64k");
        string second = _dir.File("second.raw");
        Assert.Equal(0, (await QemuImg("convert", "-O", "raw", image, second)).ExitCode);
        Assert.Equal(0, (await QemuImg("snapshot", "-c", "theirs", image)).ExitCode);
        await QemuIo(image, "write -P 0x33 0 3M");
        await AssertQemuCleanAsync(image);

        // Both tools list the same table.
        RunResult ourList = await Imgtool("snapshot", "-l", image);
        Assert.Equal((await QemuImg("snapshot", "-l", image)).Out, ourList.Out);

        // info lists them too, in text and JSON, as qemu-img does.
        Assert.Equal((await QemuImg("info", image)).Out, (await Imgtool("info", image)).Out);
        Assert.Equal((await QemuImg("info", "--output=json", image)).Out, (await Imgtool("info", "--output=json", image)).Out);

        // Revert with imgtool to the snapshot qemu-img made, and to our own.
        Assert.Equal(0, (await Imgtool("snapshot", "-a", "theirs", image)).ExitCode);
        Assert.Equal(0, (await QemuImg("compare", "-f", "raw", "-F", "qcow2", second, image)).ExitCode);
        await AssertQemuCleanAsync(image);
        Assert.Equal(0, (await Imgtool("snapshot", "-a", "1", image)).ExitCode);
        Assert.Equal(0, (await QemuImg("compare", "-f", "raw", "-F", "qcow2", first, image)).ExitCode);
        await AssertQemuCleanAsync(image);

        // Delete both; qemu-img sees no snapshots and no leaks.
        Assert.Equal(0, (await Imgtool("snapshot", "-d", "ours", image)).ExitCode);
        Assert.Equal(0, (await Imgtool("snapshot", "-d", "theirs", image)).ExitCode);
        Assert.Equal(string.Empty, (await QemuImg("snapshot", "-l", image)).Out);
        await AssertQemuCleanAsync(image);
        Assert.Equal(0, (await QemuImg("compare", "-f", "raw", "-F", "qcow2", first, image)).ExitCode);
        Assert.NotEqual(0, (await Imgtool("snapshot", "-a", "ours", image)).ExitCode);
    }

    [Theory]
    [InlineData("8M", "64M", false)]
    [InlineData("64M", "8M", true)]
    public async Task Reverting_to_a_snapshot_taken_before_a_resize_restores_its_size_as_qemu_img_does(string before, string after, bool shrink)
    {
        string image = _dir.File("resized.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", "-o", "cluster_size=4k", image, before)).ExitCode);
        await QemuIo(image, "write -P 1 0 1M", "write -P 3 6M 1M");
        Assert.Equal(0, (await QemuImg("snapshot", "-c", "s1", image)).ExitCode);
        Assert.Equal(0, (await QemuImg(shrink ? ["resize", "--shrink", image, after] : ["resize", image, after])).ExitCode);
        await QemuIo(image, "write -P 2 1M 1M");
        string theirs = _dir.File("theirs.qcow2");
        File.Copy(image, theirs);

        Assert.Equal(0, (await QemuImg("snapshot", "-a", "s1", theirs)).ExitCode);
        RunResult apply = await Imgtool("snapshot", "-a", "s1", image);
        Assert.True(apply.ExitCode == 0, apply.ToString());

        Assert.Equal(0, (await QemuImg("compare", "-s", theirs, image)).ExitCode);
        await AssertQemuCleanAsync(image);
        Assert.Contains($"virtual size: {before[..^1]} MiB", (await QemuImg("info", image)).Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reverting_to_a_snapshot_with_a_larger_L1_table_grows_the_active_one()
    {
        string image = _dir.File("grow.qcow2");
        Assert.Equal(0, (await Imgtool("create", "-f", "qcow2", "-o", "cluster_size=4k", image, "64M")).ExitCode);
        await QemuIo(image, "write -P 1 0 1M");
        Assert.Equal(0, (await Imgtool("snapshot", "-c", "s1", image)).ExitCode);

        // Make the active disk 8 MiB with a 4-entry L1 (as a resize that shrinks the table would leave it);
        // entries 4 and up are empty, so the refcounts stay right.
        await using (FileStream raw = File.OpenWrite(image))
        {
            byte[] field = new byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(field, 8 * MiB);
            raw.Position = 24;
            raw.Write(field);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(field, 4);
            raw.Position = 36;
            raw.Write(field.AsSpan(0, 4));
        }

        await AssertQemuCleanAsync(image);
        RunResult apply = await Imgtool("snapshot", "-a", "s1", image);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        await AssertQemuCleanAsync(image);
        Assert.Contains("virtual size: 64 MiB", (await QemuImg("info", image)).Out, StringComparison.Ordinal);
        await QemuIo(image, "write -P 2 40M 1M");
        string model = _dir.File("model.raw");
        byte[] expected = new byte[64 * MiB];
        expected.AsSpan(0, (int)MiB).Fill(1);
        expected.AsSpan(40 * (int)MiB, (int)MiB).Fill(2);
        await File.WriteAllBytesAsync(model, expected);
        Assert.Equal(0, (await QemuImg("compare", "-f", "raw", "-F", "qcow2", model, image)).ExitCode);
        await AssertQemuCleanAsync(image);
    }

    [Theory]
    [InlineData("compression_type=zlib")]
    [InlineData("compression_type=zstd")]
    [InlineData("compat=0.10,cluster_size=4k")]
    [InlineData("cluster_size=2M,extended_l2=on")]
    public async Task Convert_c_writes_compressed_images_qemu_img_accepts(string options)
    {
        string source = _dir.File("source.raw");
        _ = SparseFile(source, 12 * MiB, (0, 2 * (int)MiB), (5 * MiB, 70_000));
        await using (var stream = new FileStream(source, FileMode.Open))
        {
            // Compressible text as well as random data, so both compressed and stored clusters occur.
            byte[] text = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("qcow2 compressed cluster ", 100_000)));
            stream.Position = 8 * MiB;
            await stream.WriteAsync(text);
        }

        string target = _dir.File("compressed.qcow2");
        RunResult convert = await Imgtool("convert", "-c", "-O", "qcow2", "-o", options, source, target);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        await AssertQemuCleanAsync(target);
        Assert.Equal(0, (await QemuImg("compare", "-f", "raw", "-F", "qcow2", source, target)).ExitCode);
        using JsonDocument check = JsonDocument.Parse((await QemuImg("check", "--output=json", target)).Out);
        Assert.True(check.RootElement.GetProperty("compressed-clusters").GetInt64() > 0);
        await AssertChecksAgreeAsync(target);
    }
}

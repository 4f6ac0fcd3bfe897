using System.Globalization;
using static ImgTool.Cli.Tests.Interop.Qcow2Interop;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// The pairwise qcow2 matrix (<see cref="Qcow2Matrix"/>) in both directions: every variant imgtool writes passes
/// qemu-img check and compares equal to a model; every variant qemu-img writes (with snapshots where the variant
/// allows them) reads identically in imgtool, and both checks agree.
/// </summary>
public sealed class Qcow2MatrixTests : IDisposable
{
    private const int MiB = 1 << 20;
    private const long Size = 16 * MiB;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_matrix_covers_every_pair_of_settings_qemu_img_accepts()
    {
        IReadOnlyList<Qcow2Variant> matrix = Qcow2Matrix.Pairwise;
        Assert.All(matrix, v => Assert.True(Qcow2Matrix.IsValid(v), v.ToString()));
        Assert.InRange(matrix.Count, 12, 40);

        // Spot checks on pairs the constraints make rare.
        Assert.Contains(matrix, v => v.ClusterSize == 512 && v.BackingDepth == 3);
        Assert.Contains(matrix, v => v.ExtendedL2 && v.Preallocation == "full" && v.BackingDepth > 0);
        Assert.Contains(matrix, v => v.DataFile == "raw" && v.Compression == "zstd");
        Assert.Contains(matrix, v => v.RefcountBits == 1 && v.ClusterSize == 2 << 20);
        Assert.Contains(matrix, v => v.Compat == "0.10" && v.Preallocation == "falloc");
    }

    [Theory]
    [MemberData(nameof(Qcow2Matrix.Variants), MemberType = typeof(Qcow2Matrix))]
    public async Task Images_imgtool_writes_pass_qemu_img_check_and_compare(int index, string options)
    {
        Qcow2Variant variant = Qcow2Matrix.Pairwise[index];
        Assert.Equal(options, variant.ToString());
        (string? below, byte[] baseData) = await ChainAsync(variant.BackingDepth);
        string model = _dir.File("model.raw");
        await File.WriteAllBytesAsync(model, baseData);
        string image = _dir.File("ours.qcow2");
        var create = new List<string> { "create", "-f", "qcow2", "-o", variant.Options(_dir.File("ours.data")) };
        if (below is not null)
        {
            create.AddRange(["-b", Path.GetFileName(below), "-F", "qcow2"]);
        }

        create.AddRange([image, Size.ToString(CultureInfo.InvariantCulture)]);
        RunResult created = await Imgtool([.. create]);
        Assert.True(created.ExitCode == 0, created.ToString());

        await RandomWritesAsync(image, model, Size, seed: index, backing: below is not null, compressed: variant.AllowsCompression);

        await AssertQemuCleanAsync(image);
        RunResult compare = await QemuImg("compare", "-f", "raw", "-F", "qcow2", model, image);
        Assert.True(compare.ExitCode == 0, compare.ToString());
        await AssertChecksAgreeAsync(image);
        if (variant.DataFile == "raw" && below is null)
        {
            // data_file_raw: the data file alone is the disk.
            RunResult raw = await QemuImg("compare", "-f", "raw", "-F", "raw", model, _dir.File("ours.data"));
            Assert.True(raw.ExitCode == 0, raw.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(Qcow2Matrix.Variants), MemberType = typeof(Qcow2Matrix))]
    public async Task Images_qemu_img_writes_read_identically_and_check_alike(int index, string options)
    {
        Qcow2Variant variant = Qcow2Matrix.Pairwise[index];
        Assert.Equal(options, variant.ToString());
        (string? below, _) = await ChainAsync(variant.BackingDepth);
        string image = _dir.File("theirs.qcow2");
        var create = new List<string> { "create", "-f", "qcow2", "-o", variant.Options(_dir.File("theirs.data")) };
        if (below is not null)
        {
            create.AddRange(["-b", Path.GetFileName(below), "-F", "qcow2"]);
        }

        create.AddRange([image, Size.ToString(CultureInfo.InvariantCulture)]);
        RunResult created = await QemuImg([.. create]);
        Assert.True(created.ExitCode == 0, created.ToString());

        await QemuIo(image, "write -P 0x11 0 3M", "write -P 0x22 1000000 5000", "write -z 4M 1M", "discard 0 64k");
        if (variant.AllowsCompression && variant.Preallocation == "off")
        {
            // qemu writes compressed clusters only where nothing is allocated yet.
            await QemuIo(image, "write -c -P 0x33 8M 2M");
        }

        if (variant.AllowsSnapshots)
        {
            Assert.Equal(0, (await QemuImg("snapshot", "-c", "snap1", image)).ExitCode);
        }

        await QemuIo(image, "write -P 0x44 100000 200000", "write -z 2M 128k", "write -P 0x55 12M 1k", "write -P 0x66 15M 1M");

        string theirs = _dir.File("theirs.raw");
        string ours = _dir.File("ours.raw");
        Assert.Equal(0, (await QemuImg("convert", "-O", "raw", image, theirs)).ExitCode);
        RunResult convert = await Imgtool("convert", "-O", "raw", image, ours);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        byte[] expected = await File.ReadAllBytesAsync(theirs);
        byte[] actual = await File.ReadAllBytesAsync(ours);
        Assert.True(expected.AsSpan().SequenceEqual(actual), "contents differ");
        await AssertChecksAgreeAsync(image);

        // Writing through imgtool keeps qemu-img's image (and its snapshot) consistent.
        await RandomWritesAsync(image, theirs, Size, seed: 11, backing: true, compressed: variant.AllowsCompression);
        await AssertQemuCleanAsync(image);
        Assert.Equal(0, (await QemuImg("compare", "-f", "raw", "-F", "qcow2", theirs, image)).ExitCode);
    }

    /// <summary>A qemu-made chain of <paramref name="depth"/> images (none for 0), each level with writes of its own;
    /// returns the top of it and what it reads as.</summary>
    private async Task<(string? Top, byte[] Contents)> ChainAsync(int depth)
    {
        if (depth == 0)
        {
            return (null, new byte[Size]);
        }

        byte[] contents = SparseFile(_dir.File("base.raw"), Size, (0, 3 * MiB), (5 * MiB, 1000), (14 * MiB, 2 * MiB));
        string below = _dir.File("base.qcow2");
        Assert.Equal(0, (await QemuImg("convert", "-O", "qcow2", _dir.File("base.raw"), below)).ExitCode);
        for (int level = 1; level < depth; level++)
        {
            string mid = _dir.File($"mid{level}.qcow2");
            Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", "-b", Path.GetFileName(below), "-F", "qcow2", mid)).ExitCode);
            await QemuIo(mid, $"write -P {level} {level * 300_000} 70000");
            contents.AsSpan(level * 300_000, 70000).Fill((byte)level);
            below = mid;
        }

        return (below, contents);
    }
}

using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats.Qcow2;
using static ImgTool.Formats.Tests.Qcow2.Qcow2TestImages;

namespace ImgTool.Formats.Tests.Qcow2;

/// <summary>External data files in memory: the layout create writes, where guest data lands, what is refused, and
/// random operations against a model (the data file alone must equal the model when it is raw).</summary>
public sealed class Qcow2DataFileTests
{
    private const long MiB = 1 << 20;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Create_sets_the_bits_and_names_the_data_file_before_the_feature_table(bool raw)
    {
        var image = new DataFileImage();
        await image.CreateAsync(3 * MiB, raw ? "data_file=disk.data,data_file_raw=on" : "data_file=disk.data");
        byte[] head = new byte[4096];
        await image.Qcow2.ReadAsync(0, head);
        Qcow2Header header = Qcow2Header.Read(head, image.Qcow2.Length, "test.qcow2");
        Assert.True(header.Incompatible.HasFlag(Qcow2Incompatible.ExternalDataFile));
        Assert.Equal(raw, header.Autoclear.HasFlag(Qcow2Autoclear.DataFileRaw));
        Assert.Equal("disk.data", header.ExternalDataFileName);
        Assert.Equal([Qcow2HeaderExtension.ExternalDataFile, Qcow2HeaderExtension.FeatureNameTable], header.Extensions.Select(e => e.Type));
        Assert.Equal(3 * MiB, image.Data.Length);
        Assert.Equal(["disk.data"], image.Created);
    }

    [Fact]
    public async Task Guest_data_lands_in_the_data_file_at_the_guest_offset_and_cluster_0_is_told_apart_by_bit_63()
    {
        var image = new DataFileImage();
        await image.CreateAsync(3 * MiB, "data_file=disk.data");
        long metadataLength = image.Qcow2.Length;
        byte[] first = Enumerable.Repeat((byte)0xab, 65536).ToArray();
        byte[] second = Enumerable.Repeat((byte)0xcd, 1000).ToArray();
        await using (IImage device = await image.OpenAsync())
        {
            await device.WriteAsync(0, first);
            await device.WriteAsync((2 * MiB) + 100, second);
            BlockStatus status = await device.GetStatusAsync(0, 65536);
            Assert.Equal((BlockStatusKind.Data, 0L, "disk.data"), (status.Kind, status.HostOffsetBytes, status.HostFileName));
            await AssertCleanAsync(device);
        }

        byte[] inData = new byte[65536];
        await image.Data.ReadAsync(0, inData);
        Assert.Equal(first, inData);
        byte[] second2 = new byte[1000];
        await image.Data.ReadAsync((2 * MiB) + 100, second2);
        Assert.Equal(second, second2);

        // Only one L2 table was added to the image file; the L2 entry of guest cluster 0 is "offset 0, COPIED".
        Assert.Equal(metadataLength + 65536, image.Qcow2.Length);
        byte[] head = new byte[4096];
        await image.Qcow2.ReadAsync(0, head);
        Qcow2Header header = Qcow2Header.Read(head, image.Qcow2.Length, "test.qcow2");
        byte[] l1 = new byte[8];
        await image.Qcow2.ReadAsync(header.L1TableOffset, l1);
        long l2 = (long)(BinaryPrimitives.ReadUInt64BigEndian(l1) & Qcow2L2Entry.OffsetMask);
        byte[] entries = new byte[8 * 33];
        await image.Qcow2.ReadAsync(l2, entries);
        Assert.Equal(Qcow2L2Entry.Copied, BinaryPrimitives.ReadUInt64BigEndian(entries));
        Assert.Equal(Qcow2L2Entry.Copied | (ulong)(2 * MiB), BinaryPrimitives.ReadUInt64BigEndian(entries.AsSpan(8 * 32)));
    }

    [Fact]
    public async Task Raw_data_file_is_preallocated_and_zeroing_zeroes_it()
    {
        var image = new DataFileImage();
        await image.CreateAsync(2 * MiB, "data_file=disk.data,data_file_raw=on");
        await using IImage device = await image.OpenAsync();
        BlockStatus status = await device.GetStatusAsync(0, 2 * MiB);
        Assert.Equal((BlockStatusKind.Data, 2 * MiB, 0L), (status.Kind, status.LengthBytes, status.HostOffsetBytes));

        byte[] ones = Enumerable.Repeat((byte)1, (int)MiB).ToArray();
        await device.WriteAsync(0, ones);
        await device.WriteZeroesAsync(65536, 65536, BlockZeroFlags.None);
        await device.DiscardAsync(4 * 65536, 65536);
        await device.WriteZeroesAsync(8 * 65536, 100, BlockZeroFlags.MayUnmap);
        byte[] expected = (byte[])ones.Clone();
        Array.Clear(expected, 65536, 65536);
        Array.Clear(expected, 4 * 65536, 65536);
        Array.Clear(expected, 8 * 65536, 100);
        byte[] raw = new byte[MiB];
        await image.Data.ReadAsync(0, raw);
        Assert.Equal(expected, raw);
        Assert.Equal((BlockStatusKind.Zero, 65536L), ((await device.GetStatusAsync(65536, 65536)).Kind, (await device.GetStatusAsync(65536, 65536)).HostOffsetBytes));
        await AssertCleanAsync(device);
    }

    [Fact]
    public async Task Compressed_clusters_and_internal_snapshots_are_refused()
    {
        var image = new DataFileImage();
        await image.CreateAsync(MiB, "data_file=disk.data");
        await using IImage device = await image.OpenAsync();
        var compressed = (ICompressedWrites)device;
        await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await compressed.WriteCompressedAsync(0, new byte[100], true));
        var snapshots = (ISnapshots)device;
        var e = await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await snapshots.CreateSnapshotAsync("s", DateTimeOffset.UnixEpoch));
        Assert.Contains("external data file", e.Message, StringComparison.Ordinal);
        Assert.False(Qcow2Format.Instance.SupportsCompression(ImageOptions.Parse(["data_file=x"])));
    }

    [Theory]
    [InlineData("data_file_raw=on", "data-file-raw requires data-file")]
    [InlineData("data_file=d,compat=0.10", "compatibility level 1.1")]
    [InlineData("data_file=../d", "outside the image's folder")]
    [InlineData("data_file=/tmp/d", "outside the image's folder")]
    [InlineData("data_file=test.qcow2", "is the image file itself")]
    public async Task Create_refuses_bad_combinations(string options, string message)
    {
        var image = new DataFileImage();
        var e = await Assert.ThrowsAnyAsync<ImgToolException>(async () => await image.CreateAsync(MiB, options));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Empty(image.Created);
    }

    [Fact]
    public async Task Open_refuses_a_missing_name_a_name_outside_the_folder_and_a_raw_bit_without_data_file()
    {
        var image = new DataFileImage();
        await image.CreateAsync(MiB, "data_file=disk.data");
        byte[] head = new byte[65536];
        await image.Qcow2.ReadAsync(0, head);
        Qcow2Header header = Qcow2Header.Read(head, image.Qcow2.Length, "test.qcow2");

        await RewriteHeaderAsync(header.WithExtension(Qcow2HeaderExtension.ExternalDataFile, null));
        var missing = await Assert.ThrowsAsync<ImageFormatException>(async () => await image.OpenAsync());
        Assert.Contains("does not name it", missing.Message, StringComparison.Ordinal);

        await RewriteHeaderAsync(header.WithExtension(Qcow2HeaderExtension.ExternalDataFile, "../../etc/passwd"u8.ToArray()));
        var outside = await Assert.ThrowsAsync<ImageFormatException>(async () => await image.OpenAsync());
        Assert.Contains("'../../etc/passwd' is outside the image's folder", outside.Message, StringComparison.Ordinal);
        Assert.Empty(image.Opened);

        await RewriteHeaderAsync(header with { Incompatible = Qcow2Incompatible.None, Autoclear = Qcow2Autoclear.DataFileRaw });
        var rawOnly = await Assert.ThrowsAsync<ImageFormatException>(async () => await image.OpenAsync());
        Assert.Contains("raw external data bit", rawOnly.Message, StringComparison.Ordinal);

        async Task RewriteHeaderAsync(Qcow2Header changed)
        {
            byte[] cluster = new byte[65536];
            changed.Write(cluster);
            await image.Qcow2.WriteAsync(0, cluster);
        }
    }

    public static TheoryData<string> Variants =>
    [
        "data_file=disk.data",
        "data_file=disk.data,data_file_raw=on",
        "data_file=disk.data,cluster_size=4k,refcount_bits=1",
        "data_file=disk.data,extended_l2=on,cluster_size=16k",
        "data_file=disk.data,data_file_raw=on,extended_l2=on,cluster_size=32k",
        "data_file=disk.data,preallocation=metadata,cluster_size=8k",
    ];

    [Theory]
    [MemberData(nameof(Variants))]
    public void Random_operations_match_the_model_and_a_raw_data_file_is_the_disk(string options)
    {
        Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue)), seed => RunAsync(options, seed).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(10));
    }

    private static async Task<bool> RunAsync(string options, int seed)
    {
        var random = new Random(seed);
        long size = (3L << 20) + (512 * random.Next(0, 64));
        var file = new DataFileImage();
        await file.CreateAsync(size, options);
        byte[] model = new byte[size];
        IImage image = await file.OpenAsync();
        try
        {
            long cluster = image.Details.ClusterSizeBytes!.Value;
            for (int step = 0; step < 40; step++)
            {
                int op = random.Next(100);
                long offset = random.NextInt64(size);
                int length = (int)Math.Min(size - offset, random.Next(1, 4) switch
                {
                    1 => random.Next(1, 5000),
                    2 => random.Next(1, (int)cluster * 3),
                    _ => random.Next(1, 300_000),
                });
                if (op < 55)
                {
                    byte[] data = new byte[length];
                    random.NextBytes(data);
                    await ModelOperations.WriteAsync(image, model, offset, data);
                }
                else if (op < 75)
                {
                    await ModelOperations.WriteZeroesAsync(image, model, offset, length, random.Next(2) == 0 ? BlockZeroFlags.None : BlockZeroFlags.MayUnmap);
                }
                else if (op < 90)
                {
                    await ModelOperations.DiscardAsync(image, model, offset, length, cluster);
                }
                else
                {
                    await image.DisposeAsync();
                    image = await file.OpenAsync();
                }
            }

            byte[] back = await ReadAllAsync(image);
            Assert.True(model.AsSpan().SequenceEqual(back), $"content differs at {model.AsSpan().CommonPrefixLength(back)} (seed {seed})");
            await AssertCleanAsync(image);
        }
        finally
        {
            await image.DisposeAsync();
        }

        if (options.Contains("data_file_raw=on", StringComparison.Ordinal))
        {
            byte[] raw = new byte[size];
            await file.Data.ReadZeroFilledAsync(0, raw);
            Assert.True(model.AsSpan().SequenceEqual(raw), $"raw data file differs at {model.AsSpan().CommonPrefixLength(raw)} (seed {seed})");
            Assert.Equal(size, file.Data.Length);
        }

        // No guest data in the image file: it holds the header, refcounts, L1 and at most one L2 table here.
        Assert.True(file.Qcow2.Length <= 6 * (1L << 16), $"the image file grew to {file.Qcow2.Length} bytes");
        return true;
    }

    /// <summary>An in-memory qcow2 file and its data file, with the related-file callbacks create and open use.</summary>
    private sealed class DataFileImage
    {
        private readonly MemoryHostFile _data = new("disk.data");

        public SharedHostFile Qcow2 { get; } = new(new MemoryHostFile("test.qcow2"));

        public SharedHostFile Data => new(_data);

        public List<string> Created { get; } = [];

        public List<string> Opened { get; } = [];

        public async Task CreateAsync(long size, string options) =>
            await Qcow2Format.Instance.CreateAsync(Qcow2, new ImageCreateRequest(size, ImageOptions.Parse([options]), CreateRelatedFile: name =>
            {
                Created.Add(name);
                return Data;
            }));

        public async Task<IImage> OpenAsync() =>
            await Qcow2Format.Instance.OpenAsync(Qcow2, new ImageOpenContext(false, null, (name, _) =>
            {
                Opened.Add(name);
                return name == "disk.data" ? Data : throw new HostIOException("Could not open: No such file or directory", name);
            }));
    }
}

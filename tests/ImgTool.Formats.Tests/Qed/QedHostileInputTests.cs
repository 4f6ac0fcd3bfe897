using FsCheck;
using FsCheck.Fluent;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Formats.Qed;
using ImgTool.Formats.Tests.Qcow2;
using static ImgTool.Formats.Tests.Qed.QedTestImages;

namespace ImgTool.Formats.Tests.Qed;

/// <summary>Hostile headers and tables: one typed error (the CLI's one line and non-zero exit), never a crash, a hang
/// or an allocation sized by the file.</summary>
public sealed class QedHostileInputTests
{
    private const int MiB = 1024 * 1024;

    public static TheoryData<string> BadHeaders =>
    [
        "cluster_size too small",
        "cluster_size too large",
        "cluster_size not a power of 2",
        "table_size 0",
        "table_size 32",
        "table_size 3",
        "header_size 0",
        "header_size overflowing 32 bits",
        "L1 past the end of the file",
        "L1 unaligned",
        "L1 inside the header",
        "L1 offset that wraps",
        "image size not whole sectors",
        "image size beyond the tables",
        "unknown feature bit",
        "backing name past the header cluster",
        "backing name offset that wraps",
    ];

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public async Task A_bad_header_field_is_refused_with_a_clear_error(string what)
    {
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB);
        await WriteHeaderAsync(file, Damage(what, await ReadHeaderAsync(file)));
        ImgToolException e = await Assert.ThrowsAnyAsync<ImgToolException>(async () => await OpenAsync(file, readOnly: true));
        Assert.False(string.IsNullOrWhiteSpace(e.Message), what);
        Assert.DoesNotContain('\n', e.Message);
    }

    private static QedHeader Damage(string what, QedHeader h) => what switch
    {
        "cluster_size too small" => h with { ClusterSize = 2048 },
        "cluster_size too large" => h with { ClusterSize = 128 * MiB },
        "cluster_size not a power of 2" => h with { ClusterSize = 65536 + 4096 },
        "table_size 0" => h with { TableSize = 0 },
        "table_size 32" => h with { TableSize = 32 },
        "table_size 3" => h with { TableSize = 3 },
        "header_size 0" => h with { HeaderClusters = 0 },
        "header_size overflowing 32 bits" => h with { HeaderClusters = 1u << 20 },
        "L1 past the end of the file" => h with { L1TableOffset = 1UL << 40 },
        "L1 unaligned" => h with { L1TableOffset = 65536 + 8 },
        "L1 inside the header" => h with { L1TableOffset = 0 },
        "L1 offset that wraps" => h with { L1TableOffset = ulong.MaxValue - 4095 },
        "image size not whole sectors" => h with { ImageSize = (4 * MiB) + 1 },
        "image size beyond the tables" => h with { ImageSize = 1UL << 62 },
        "unknown feature bit" => h with { Features = h.Features | (QedFeatures)0x80 },
        "backing name past the header cluster" => h with { Features = QedFeatures.BackingFile, BackingFileNameOffset = 65530, BackingFileNameSize = 100 },
        "backing name offset that wraps" => h with { Features = QedFeatures.BackingFile, BackingFileNameOffset = uint.MaxValue, BackingFileNameSize = 10 },
        _ => throw new ArgumentOutOfRangeException(nameof(what)),
    };

    [Fact]
    public async Task A_backing_name_with_a_NUL_is_refused()
    {
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB, "", "base.raw", "raw");
        await file.WriteAsync(QedHeader.SizeBytes + 4, new byte[] { 0 });
        ImageFormatException e = await Assert.ThrowsAsync<ImageFormatException>(async () => await OpenAsync(file, readOnly: true));
        Assert.Contains("NUL", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_backing_name_longer_than_qemu_accepts_is_refused()
    {
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB, "", "base.raw", "raw");
        QedHeader header = await ReadHeaderAsync(file);
        await WriteHeaderAsync(file, header with { BackingFileNameSize = 5000 });
        ImageFormatException e = await Assert.ThrowsAsync<ImageFormatException>(async () => await OpenAsync(file, readOnly: true));
        Assert.Contains("too long", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Huge_tables_are_refused_before_anything_is_allocated()
    {
        // 64 MiB clusters, 16-cluster tables (1 GiB each), and a disk so big that more than 4 Mi L1 entries are needed.
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB);
        QedHeader header = await ReadHeaderAsync(file);
        await WriteHeaderAsync(file, header with { ClusterSize = 64 * MiB, TableSize = 16, L1TableOffset = 64 * MiB, ImageSize = 1UL << 62 });
        file.SetLength((64L * MiB) * 17);
        await Assert.ThrowsAnyAsync<ImgToolException>(async () => await OpenAsync(file, readOnly: true));
    }

    [Theory]
    [InlineData(1L << 40, "past the end")]
    [InlineData(65536 * 5 + 8, "unaligned")]
    [InlineData(4096, "inside the header")]
    public async Task An_L2_offset_that_is_invalid_fails_reads_and_is_a_check_corruption(long l2Offset, string what)
    {
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB);
        QedHeader header = await ReadHeaderAsync(file);
        await WriteEntryAsync(file, (long)header.L1TableOffset, l2Offset);
        await using IImage image = await OpenAsync(file, readOnly: true);
        ImageCorruptException e = await Assert.ThrowsAsync<ImageCorruptException>(async () => await image.ReadAsync(0, new byte[512]));
        Assert.Equal("L1 table", e.Structure);
        await Assert.ThrowsAsync<ImageCorruptException>(async () => await image.GetStatusAsync(0, 512));
        CheckReport report = await ((ICheckable)image).CheckAsync(CheckRepair.None);
        Assert.True(report.Corruptions == 1, what);
    }

    [Theory]
    [InlineData(1L << 40)]
    [InlineData(65536 * 5 + 512)]
    [InlineData(-4096)]
    public async Task A_data_offset_that_is_invalid_fails_reads_and_writes(long dataOffset)
    {
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB);
        await using (IImage writer = await OpenAsync(file))
        {
            await writer.WriteAsync(0, new byte[100]);
        }

        QedHeader header = await ReadHeaderAsync(file);
        long l2 = await ReadEntryAsync(file, (long)header.L1TableOffset);
        await WriteEntryAsync(file, l2, dataOffset);
        await using IImage image = await OpenAsync(file, checking: true);
        await Assert.ThrowsAsync<ImageCorruptException>(async () => await image.ReadAsync(0, new byte[512]));
        await Assert.ThrowsAsync<ImageCorruptException>(async () => await image.WriteAsync(0, new byte[512]));
    }

    [Fact]
    public async Task A_file_shorter_than_the_header_is_refused()
    {
        var file = new MemoryHostFile("tiny.qed");
        await file.WriteAsync(0, "QED\0"u8.ToArray());
        Assert.Equal(0, QedFormat.Instance.Probe(new ProbeInput("QED\0"u8, [], 4, "tiny.qed")));
        await Assert.ThrowsAsync<ImageFormatException>(async () => await OpenAsync(file));
    }

    [Theory]
    [InlineData("")]
    [InlineData("cluster_size=4k,table_size=1")]
    public void Random_damage_to_metadata_gives_typed_errors(string options)
    {
        Prop.ForAll(Arb.From(Gen.Choose(0, int.MaxValue)), seed => DamageAsync(options, seed).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(60));
    }

    private static async Task<bool> DamageAsync(string options, int seed)
    {
        var random = new Random(seed);
        SharedHostFile file = await CreateInMemoryAsync(4 * MiB, options);
        await using (IImage writer = await OpenAsync(file))
        {
            byte[] data = new byte[200_000];
            random.NextBytes(data);
            await writer.WriteAsync(random.NextInt64(2 * MiB), data);
            await writer.WriteZeroesAsync(3 * MiB, MiB, BlockZeroFlags.None);
        }

        for (int i = 0, damage = random.Next(1, 8); i < damage; i++)
        {
            long at = random.Next(3) == 0 ? random.Next(0, QedHeader.SizeBytes) : random.NextInt64(file.Length);
            await file.WriteAsync(at, new[] { (byte)random.Next(256) });
        }

        try
        {
            await using IImage image = await OpenAsync(file, readOnly: true);
            byte[] buffer = new byte[256 * 1024];
            for (long offset = 0; offset < image.SizeBytes && offset < 8L * MiB; offset += buffer.Length)
            {
                int length = (int)Math.Min(buffer.Length, image.SizeBytes - offset);
                try
                {
                    await image.ReadAsync(offset, buffer.AsMemory(0, length));
                    _ = await image.GetStatusAsync(offset, length);
                }
                catch (ImageCorruptException)
                {
                    // One damaged table entry fails the reads it maps, not the whole image.
                }
            }

            _ = await ((ICheckable)image).CheckAsync(CheckRepair.None);
        }
        catch (ImgToolException)
        {
            // A clear, typed refusal is the right answer to damaged metadata.
        }

        return true;
    }
}

using FsCheck.Xunit;
using ImgTool.Block.Errors;
using ImgTool.Formats;
using ImgTool.Operations.Common;
using ImgTool.Operations.Convert;
using static ImgTool.Operations.Tests.RawFixtures;

namespace ImgTool.Operations.Tests;

public sealed class ConvertOperationTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ConvertOperation _convert = new(new ImageOpener(FormatRegistry.Default));

    public void Dispose() => _dir.Dispose();

    /// <summary>Whatever the layout of data, holes and zero-filled data, the copy is byte-identical,
    /// holes stay holes, and nothing but data is read.</summary>
    [Property(MaxTest = 25)]
    public bool Copies_any_sparse_layout_exactly(byte[] layout, bool outOfOrder, byte parallel)
    {
        string source = _dir.File($"src-{Guid.NewGuid():N}.raw");
        string target = _dir.File($"dst-{Guid.NewGuid():N}.raw");
        long size = (layout.Length + 1) * 64 * 1024L + 1234; // an odd tail on purpose
        var extents = new List<(long, int)>();
        for (int i = 0; i < layout.Length; i++)
        {
            if (layout[i] % 3 == 0)
            {
                extents.Add((i * 64 * 1024L + layout[i], 64 * 1024 - layout[i]));
            }
        }

        byte[] model = Write(source, size, extents);
        ConvertResult result = _convert.RunAsync(new ConvertOptions([source], target, Parallel: 1 + (parallel % 16), OutOfOrder: outOfOrder))
            .AsTask().GetAwaiter().GetResult();

        byte[] copy = File.ReadAllBytes(target);
        long dataBytes = extents.Sum(e => (long)e.Item2);
        return copy.AsSpan().SequenceEqual(model)
            && result.VirtualSizeBytes == size
            && result.DataBytesRead <= AlignUp(dataBytes + extents.Count * 4096L, 4096)
            && Allocated(target) <= Allocated(source);
    }

    [Fact]
    public async Task Concatenates_several_sources_in_order()
    {
        byte[] a = Write(_dir.File("a.raw"), 3 * MiB + 512, [(MiB, MiB)], seed: 1);
        byte[] b = Write(_dir.File("b.raw"), 2 * MiB, [(0, 4096), (2 * MiB - 4096, 4096)], seed: 2);
        ConvertResult result = await _convert.RunAsync(new ConvertOptions([_dir.File("a.raw"), _dir.File("b.raw")], _dir.File("ab.raw")));
        Assert.Equal(a.Length + b.Length, result.VirtualSizeBytes);
        byte[] copy = await File.ReadAllBytesAsync(_dir.File("ab.raw"));
        Assert.Equal(a.Concat(b).ToArray(), copy);
    }

    [Fact]
    public async Task Zero_sparse_size_allocates_the_whole_target()
    {
        Write(_dir.File("s.raw"), 4 * MiB, [(0, 4096)]);
        await _convert.RunAsync(new ConvertOptions([_dir.File("s.raw")], _dir.File("full.raw"), SparseBytes: 0));
        Assert.Equal(4 * MiB, Allocated(_dir.File("full.raw")));
        await _convert.RunAsync(new ConvertOptions([_dir.File("s.raw")], _dir.File("sparse.raw")));
        Assert.Equal(4096, Allocated(_dir.File("sparse.raw")));
    }

    [Fact]
    public async Task Zero_runs_inside_data_are_not_written()
    {
        // Data, then a whole MiB of written zeros, then data: the zeros become a hole in the copy.
        string source = _dir.File("z.raw");
        Write(source, 3 * MiB, [(0, MiB), (2 * MiB, MiB)]);
        using (var writer = Block.Host.LinuxHostFile.Open(source, new Block.Host.HostOpenOptions(false)))
        {
            await writer.WriteAsync(MiB, new byte[MiB]);
        }

        ConvertResult result = await _convert.RunAsync(new ConvertOptions([source], _dir.File("z2.raw")));
        Assert.Equal(2 * MiB, Allocated(_dir.File("z2.raw")));
        Assert.Equal(MiB, result.ZeroBytesSkipped);
        Assert.Equal(2 * MiB, result.BytesWritten);
    }

    [Fact]
    public async Task No_create_writes_zeros_over_an_existing_target_unless_told_it_is_zero()
    {
        Write(_dir.File("src.raw"), 2 * MiB, [(0, 4096)], seed: 5);
        byte[] junk = Write(_dir.File("old.raw"), 2 * MiB, [(0, 2 * MiB)], seed: 6);
        byte[] expected = Write(_dir.File("expected.raw"), 2 * MiB, [(0, 4096)], seed: 5);

        ConvertResult result = await _convert.RunAsync(new ConvertOptions([_dir.File("src.raw")], _dir.File("old.raw"), NoCreate: true));
        Assert.Equal(expected, await File.ReadAllBytesAsync(_dir.File("old.raw")));
        Assert.Equal(2 * MiB - 4096, result.ZeroBytesWritten);

        // Told the target is zero when it is not: zero ranges are skipped, the old bytes stay (as qemu-img).
        await File.WriteAllBytesAsync(_dir.File("old.raw"), junk);
        await _convert.RunAsync(new ConvertOptions([_dir.File("src.raw")], _dir.File("old.raw"), NoCreate: true, TargetIsZero: true));
        Assert.Equal(junk[8192], (await File.ReadAllBytesAsync(_dir.File("old.raw")))[8192]);
    }

    [Fact]
    public async Task A_target_smaller_than_the_source_is_refused_with_no_create()
    {
        Write(_dir.File("big.raw"), 2 * MiB, []);
        Write(_dir.File("small.raw"), MiB, []);
        var e = await Assert.ThrowsAsync<InvalidOptionException>(async () =>
            await _convert.RunAsync(new ConvertOptions([_dir.File("big.raw")], _dir.File("small.raw"), NoCreate: true)));
        Assert.Contains("smaller than the source", e.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(_dir.File("small.raw"))); // not ours to delete
    }

    [Fact]
    public async Task A_cancelled_convert_removes_the_target_it_created()
    {
        Write(_dir.File("src.raw"), 64 * MiB, [(0, 32 * MiB)]);
        using var cancel = new CancellationTokenSource();
        var progress = new CancelAfterFirstReport(cancel);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            await _convert.RunAsync(new ConvertOptions([_dir.File("src.raw")], _dir.File("out.raw"), Parallel: 1), progress, cancel.Token));
        Assert.False(File.Exists(_dir.File("out.raw")));
    }

    [Fact]
    public async Task A_missing_source_creates_nothing()
    {
        await Assert.ThrowsAsync<HostIOException>(async () =>
            await _convert.RunAsync(new ConvertOptions([_dir.File("missing.raw")], _dir.File("out.raw"))));
        Assert.False(File.Exists(_dir.File("out.raw")));
    }

    [Theory]
    [InlineData(0, 4096L)]
    [InlineData(17, 4096L)]
    [InlineData(8, 1000L)]
    [InlineData(8, -512L)]
    public async Task Bad_parallelism_or_sparse_size_is_refused(int parallel, long sparse)
    {
        Write(_dir.File("src.raw"), MiB, []);
        await Assert.ThrowsAsync<InvalidOptionException>(async () =>
            await _convert.RunAsync(new ConvertOptions([_dir.File("src.raw")], _dir.File("out.raw"), Parallel: parallel, SparseBytes: sparse)));
        Assert.False(File.Exists(_dir.File("out.raw")));
    }

    [Fact]
    public async Task Compression_is_refused_for_raw()
    {
        Write(_dir.File("src.raw"), MiB, []);
        await Assert.ThrowsAsync<UnsupportedFeatureException>(async () =>
            await _convert.RunAsync(new ConvertOptions([_dir.File("src.raw")], _dir.File("out.raw"), Compress: true)));
        Assert.False(File.Exists(_dir.File("out.raw")));
    }

    [Fact]
    public async Task Progress_rises_to_the_total()
    {
        Write(_dir.File("src.raw"), 8 * MiB, [(0, 4 * MiB)]);
        var reports = new List<ProgressReport>();
        var progress = new SyncProgress(r => { lock (reports) { reports.Add(r); } });
        await _convert.RunAsync(new ConvertOptions([_dir.File("src.raw")], _dir.File("out.raw")), progress);
        Assert.NotEmpty(reports);
        Assert.Equal(8 * MiB, reports[^1].DoneBytes);
        Assert.All(reports, r => Assert.Equal(8 * MiB, r.TotalBytes));
    }

    private static long AlignUp(long value, long alignment) => (value + alignment - 1) / alignment * alignment;

    private sealed class SyncProgress(Action<ProgressReport> report) : IProgress<ProgressReport>
    {
        public void Report(ProgressReport value) => report(value);
    }

    private sealed class CancelAfterFirstReport(CancellationTokenSource cancel) : IProgress<ProgressReport>
    {
        public void Report(ProgressReport value) => cancel.Cancel();
    }
}

using ImgTool.Formats;
using ImgTool.Operations.Common;
using ImgTool.Operations.Compare;
using ImgTool.Operations.Map;
using static ImgTool.Operations.Tests.RawFixtures;

namespace ImgTool.Operations.Tests;

public sealed class CompareMapTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ImageOpener _opener = new(FormatRegistry.Default);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Identical_content_with_different_allocation_is_identical_unless_strict()
    {
        Write(_dir.File("a.raw"), 4 * MiB, [(MiB, 4096)], seed: 3);
        Write(_dir.File("b.raw"), 4 * MiB, [(MiB, 4096)], seed: 3);
        using (var b = Block.Host.LinuxHostFile.Open(_dir.File("b.raw"), new Block.Host.HostOpenOptions(false)))
        {
            await b.WriteAsync(3 * MiB, new byte[4096]); // allocated zeros: same content
        }

        var compare = new CompareOperation(_opener);
        CompareResult result = await compare.RunAsync(new CompareOptions(_dir.File("a.raw"), _dir.File("b.raw")));
        Assert.Equal(CompareOutcome.Identical, result.Outcome);
    }

    [Fact]
    public async Task Reports_the_first_differing_sector_and_byte()
    {
        Write(_dir.File("a.raw"), 4 * MiB, [(0, 2 * MiB)], seed: 3);
        Write(_dir.File("b.raw"), 4 * MiB, [(0, 2 * MiB)], seed: 3);
        using (var b = Block.Host.LinuxHostFile.Open(_dir.File("b.raw"), new Block.Host.HostOpenOptions(false)))
        {
            byte[] one = new byte[1];
            await b.ReadAsync(1_000_000, one);
            one[0] ^= 0xff;
            await b.WriteAsync(1_000_000, one);
        }

        CompareResult result = await new CompareOperation(_opener).RunAsync(new CompareOptions(_dir.File("a.raw"), _dir.File("b.raw")));
        Assert.Equal(CompareOutcome.ContentMismatch, result.Outcome);
        Assert.Equal(1_000_000 / 512 * 512, result.MismatchOffsetBytes);
        Assert.Equal(1_000_000, result.FirstDifferentByte);
    }

    [Fact]
    public async Task Different_sizes_compare_the_tail_with_zeros_and_fail_when_strict()
    {
        Write(_dir.File("short.raw"), 2 * MiB, [(0, 4096)], seed: 4);
        Write(_dir.File("long.raw"), 3 * MiB, [(0, 4096)], seed: 4);
        var compare = new CompareOperation(_opener);
        CompareResult lenient = await compare.RunAsync(new CompareOptions(_dir.File("short.raw"), _dir.File("long.raw")));
        Assert.Equal(CompareOutcome.Identical, lenient.Outcome);
        Assert.True(lenient.SizesDiffer);

        CompareResult strict = await compare.RunAsync(new CompareOptions(_dir.File("short.raw"), _dir.File("long.raw"), Strict: true));
        Assert.Equal(CompareOutcome.SizeMismatch, strict.Outcome);

        Write(_dir.File("long2.raw"), 3 * MiB, [(0, 4096), (2 * MiB + 8192, 10)], seed: 4);
        CompareResult tail = await compare.RunAsync(new CompareOptions(_dir.File("short.raw"), _dir.File("long2.raw")));
        Assert.Equal(CompareOutcome.ContentMismatch, tail.Outcome);
        Assert.Equal(2 * MiB + 8192, tail.MismatchOffsetBytes);
    }

    [Fact]
    public async Task Compare_reports_progress_to_the_total()
    {
        Write(_dir.File("a.raw"), 4 * MiB, [(0, 4096)]);
        var last = new ProgressReport();
        await new CompareOperation(_opener).RunAsync(new CompareOptions(_dir.File("a.raw"), _dir.File("a.raw")), new Sync(r => last = r));
        Assert.Equal(4 * MiB, last.DoneBytes);
    }

    [Fact]
    public async Task Map_lists_data_and_holes_merged_with_offsets()
    {
        Write(_dir.File("m.raw"), 8 * MiB, [(MiB, MiB), (2 * MiB, MiB), (6 * MiB, 4096)]);
        MapResult map = await new MapOperation(_opener).RunAsync(new MapOptions(_dir.File("m.raw")));
        Assert.Equal(
            [
                new MapEntry(0, MiB, 0, true, true, false, 0, _dir.File("m.raw")),
                new MapEntry(MiB, 2 * MiB, 0, true, false, true, MiB, _dir.File("m.raw")),
                new MapEntry(3 * MiB, 3 * MiB, 0, true, true, false, 3 * MiB, _dir.File("m.raw")),
                new MapEntry(6 * MiB, 4096, 0, true, false, true, 6 * MiB, _dir.File("m.raw")),
                new MapEntry((6 * MiB) + 4096, (2 * MiB) - 4096, 0, true, true, false, (6 * MiB) + 4096, _dir.File("m.raw")),
            ],
            map.Entries);

        MapResult window = await new MapOperation(_opener).RunAsync(new MapOptions(_dir.File("m.raw"), StartOffsetBytes: MiB + 4096, MaxLengthBytes: MiB));
        Assert.Equal([new MapEntry(MiB + 4096, MiB, 0, true, false, true, MiB + 4096, _dir.File("m.raw"))], window.Entries);
    }

    private sealed class Sync(Action<ProgressReport> report) : IProgress<ProgressReport>
    {
        public void Report(ProgressReport value) => report(value);
    }
}

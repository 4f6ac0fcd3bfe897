using ImgTool.Block.Devices;
using ImgTool.Operations.Common;
using ImgTool.Operations.Convert;

namespace ImgTool.Operations.Tests;

/// <summary>
/// Issue 19 item 3: with several requests in flight convert's progress is the contiguous done part from offset 0,
/// reported in order: it never goes backwards and never counts a chunk whose predecessors are still in flight.
/// </summary>
public sealed class ConvertProgressTests
{
    private const int Chunks = 8;
    private const long ChunkBytes = ConvertPipeline.ChunkBytes;

    /// <summary>
    /// The report that the first chunk is done is slow to arrive (a printer busy writing): the workers that finish the next
    /// chunks meanwhile must not overtake it with larger figures, which then went back on the screen.
    /// </summary>
    [Fact]
    public async Task Reports_from_several_workers_arrive_in_increasing_order()
    {
        var target = new WrittenRanges(Chunks * ChunkBytes);
        var progress = new RecordingProgress(target, slowFirstReport: true);

        await new ConvertPipeline(new ModelSource(RandomContent()), target, null, 4096, targetIsZero: false, parallel: 8, outOfOrder: false, progress)
            .RunAsync(CancellationToken.None);

        Assert.True(progress.Done.Zip(progress.Done.Skip(1)).All(pair => pair.First <= pair.Second), string.Join(" -> ", progress.Done));
        Assert.Equal(Chunks * ChunkBytes, progress.Done[^1]);
        Assert.Empty(progress.Violations);
    }

    /// <summary>
    /// -W: the first chunk's read is held until every other chunk is written. Nothing may be reported as done
    /// before it is, then everything at once: the sum of finished chunks said 7/8 while the first 2 MiB were missing.
    /// </summary>
    [Fact]
    public async Task Out_of_order_writes_report_only_the_contiguous_done_part()
    {
        var target = new WrittenRanges(Chunks * ChunkBytes);
        var progress = new RecordingProgress(target, slowFirstReport: false);
        var source = new FirstChunkLast(RandomContent(), target);

        await new ConvertPipeline(source, target, null, 4096, targetIsZero: false, parallel: Chunks, outOfOrder: true, progress)
            .RunAsync(CancellationToken.None);

        Assert.Empty(progress.Violations);
        Assert.All(progress.Done, done => Assert.Equal(Chunks * ChunkBytes, done));
    }

    private static byte[] RandomContent()
    {
        byte[] content = new byte[Chunks * ChunkBytes];
        new Random(19).NextBytes(content);
        return content;
    }

    /// <summary>Records the reported figures, checking at each that everything below it has been written.</summary>
    private sealed class RecordingProgress(WrittenRanges target, bool slowFirstReport) : IProgress<ProgressReport>
    {
        private readonly Lock _lock = new();
        private readonly ManualResetEventSlim _laterReport = new();

        public List<long> Done { get; } = [];

        public List<string> Violations { get; } = [];

        public void Report(ProgressReport value)
        {
            if (slowFirstReport && value.DoneBytes == ChunkBytes)
            {
                // Held until a later figure has been recorded, or long enough for the thread pool to have started
                // another worker (it has few threads on a small machine): reports made in order never get past.
                _laterReport.Wait(TimeSpan.FromSeconds(1.5));
            }

            long written = target.ContiguousWritten();
            lock (_lock)
            {
                if (value.DoneBytes > written)
                {
                    Violations.Add($"reported {value.DoneBytes} done with only {written} written from the start");
                }

                Done.Add(value.DoneBytes);
            }

            if (value.DoneBytes > ChunkBytes)
            {
                _laterReport.Set();
            }
        }
    }

    /// <summary>A target that remembers which 4 KiB blocks were written.</summary>
    private sealed class WrittenRanges(long sizeBytes) : IBlockDevice
    {
        private const int Block = 4096;
        private readonly bool[] _written = new bool[sizeBytes / Block];
        private readonly Lock _lock = new();

        public long SizeBytes => sizeBytes;

        public int Alignment => 1;

        public bool IsReadOnly => false;

        public int WrittenBlocks
        {
            get
            {
                lock (_lock)
                {
                    return _written.Count(written => written);
                }
            }
        }

        public long ContiguousWritten()
        {
            lock (_lock)
            {
                int first = Array.IndexOf(_written, false);
                return first < 0 ? sizeBytes : (long)first * Block;
            }
        }

        public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            Mark(offsetBytes, buffer.Length);

        public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default) =>
            Mark(offsetBytes, lengthBytes);

        public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private ValueTask Mark(long offsetBytes, long lengthBytes)
        {
            lock (_lock)
            {
                _written.AsSpan((int)(offsetBytes / Block), (int)(lengthBytes / Block)).Fill(true);
            }

            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A source whose first chunk is read only once every other chunk has been written.</summary>
    private sealed class FirstChunkLast(byte[] content, WrittenRanges target) : IBlockDevice
    {
        private readonly ModelSource _inner = new(content);

        public long SizeBytes => _inner.SizeBytes;

        public int Alignment => 1;

        public bool IsReadOnly => true;

        public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (offsetBytes == 0)
            {
                long others = (Chunks - 1) * ChunkBytes / 4096;
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(30));
                while (target.WrittenBlocks < others)
                {
                    await Task.Delay(5, timeout.Token);
                }
            }

            await _inner.ReadAsync(offsetBytes, buffer, cancellationToken);
        }

        public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
            _inner.GetStatusAsync(offsetBytes, lengthBytes, cancellationToken);

        public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, BlockZeroFlags flags, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

namespace ImgTool.Operations.Common;

/// <summary>
/// Progress of work cut into numbered pieces that cover the image from its start in order (piece n ends where
/// n + 1 begins) but finish in any order: several requests in flight, -W's out-of-order writes. What is reported
/// is the part from offset 0 that is completely done, so it never goes backwards and never counts a piece before
/// the ones ahead of it are finished (issue 19 item 3: the sum of finished pieces, reported from each worker, went
/// 51.56 -> 100.00 -> 81.25 on a terminal). Reports are made under the lock, so they reach the printer in order.
/// </summary>
internal sealed class ContiguousProgress(string phase, long totalBytes, IProgress<ProgressReport>? progress)
{
    private readonly Lock _lock = new();

    /// <summary>Pieces finished before one ahead of them, by number, with the offset where each ends. Bounded by the
    /// requests in flight.</summary>
    private readonly Dictionary<long, long> _finishedAhead = [];
    private long _nextSequence;
    private long _doneBytes;

    /// <summary>Piece <paramref name="sequence"/>, which ends at <paramref name="endOffsetBytes"/>, is finished.</summary>
    public void Complete(long sequence, long endOffsetBytes)
    {
        if (progress is null)
        {
            return;
        }

        lock (_lock)
        {
            if (sequence != _nextSequence)
            {
                _finishedAhead[sequence] = endOffsetBytes;
                return;
            }

            _doneBytes = endOffsetBytes;
            _nextSequence++;
            while (_finishedAhead.Remove(_nextSequence, out long end))
            {
                _doneBytes = end;
                _nextSequence++;
            }

            progress.Report(new ProgressReport(phase, _doneBytes, totalBytes));
        }
    }

    /// <summary>Everything is done: the final 100 %.</summary>
    public void Finish()
    {
        lock (_lock)
        {
            progress?.Report(new ProgressReport(phase, totalBytes, totalBytes));
        }
    }
}

using System.Diagnostics;

namespace ImgTool.Operations.Common;

/// <summary>qemu-img's -r rate limit: after each request, waits until the bytes done so far fit the rate.</summary>
internal sealed class Throttle(long? bytesPerSecond)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _bytes;

    public async ValueTask WaitAsync(long bytes, CancellationToken cancellationToken)
    {
        if (bytesPerSecond is not > 0 || bytes <= 0)
        {
            return;
        }

        _bytes += bytes;
        TimeSpan due = TimeSpan.FromSeconds((double)_bytes / bytesPerSecond.Value);
        TimeSpan ahead = due - _clock.Elapsed;
        if (ahead > TimeSpan.Zero)
        {
            await Task.Delay(ahead, cancellationToken).ConfigureAwait(false);
        }
    }
}

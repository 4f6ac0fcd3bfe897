namespace ImgTool.Operations.Common;

/// <summary>
/// Lets numbered steps run one at a time in sequence order: step n waits until steps 0..n-1 have
/// called <see cref="Advance"/>. Used so parallel readers still write in order.
/// </summary>
internal sealed class OrderedGate
{
    private readonly Dictionary<long, TaskCompletionSource> _waiters = [];
    private readonly Lock _lock = new();
    private long _next;

    public ValueTask WaitTurnAsync(long sequence, CancellationToken cancellationToken)
    {
        TaskCompletionSource waiter;
        lock (_lock)
        {
            if (sequence == _next)
            {
                return ValueTask.CompletedTask;
            }

            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters[sequence] = waiter;
        }

        return new ValueTask(waiter.Task.WaitAsync(cancellationToken));
    }

    public void Advance(long sequence)
    {
        TaskCompletionSource? next;
        lock (_lock)
        {
            if (sequence != _next)
            {
                throw new InvalidOperationException($"step {sequence} finished out of turn (expected {_next})");
            }

            _next++;
            if (!_waiters.Remove(_next, out next))
            {
                return;
            }
        }

        next.SetResult();
    }
}

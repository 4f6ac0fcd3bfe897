namespace ImgTool.Operations.Common;

/// <summary>Counts the writes of a long operation and tells the crash-test hook after each one, so a test can stop
/// the process exactly there (as a kill -9 would) and check what the files hold. Safe to call from concurrent writers.</summary>
internal sealed class WriteCounter(Action<int>? afterWrite)
{
    private int _writes;

    public int Writes => Volatile.Read(ref _writes);

    public void Count()
    {
        int count = Interlocked.Increment(ref _writes);
        afterWrite?.Invoke(count);
    }
}

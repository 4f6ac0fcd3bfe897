namespace ImgTool.Operations.Common;

/// <summary>Counts the writes of a long operation and tells the crash-test hook after each one, so a test can stop
/// the process exactly there (as a kill -9 would) and check what the files hold.</summary>
internal sealed class WriteCounter(Action<int>? afterWrite)
{
    public int Writes { get; private set; }

    public void Count()
    {
        Writes++;
        afterWrite?.Invoke(Writes);
    }
}

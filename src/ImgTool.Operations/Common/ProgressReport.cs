namespace ImgTool.Operations.Common;

/// <summary>One progress update: which phase, how many bytes of how many are done.</summary>
public readonly record struct ProgressReport(string Phase, long DoneBytes, long TotalBytes)
{
    public double Percent => TotalBytes <= 0 ? 100.0 : 100.0 * DoneBytes / TotalBytes;
}

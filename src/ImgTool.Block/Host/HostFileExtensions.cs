namespace ImgTool.Block.Host;

public static class HostFileExtensions
{
    /// <summary>Reads exactly buffer.Length bytes; what lies beyond the end of the file reads as zeros,
    /// as a sparse tail would.</summary>
    public static async ValueTask ReadZeroFilledAsync(this IHostFile file, long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = await file.ReadAsync(offsetBytes + done, buffer[done..], cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                buffer.Span[done..].Clear();
                return;
            }

            done += n;
        }
    }
}

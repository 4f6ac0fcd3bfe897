using System.Buffers;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Luks;

/// <summary>
/// Byte-addressed reads and writes over a file region whose 512-byte sectors are encrypted with a sector cipher:
/// sector n of the region lies at <c>regionOffset + n × 512</c> in the file and is encrypted with IV n. Requests
/// that do not cover whole sectors are widened: reads decrypt the whole sectors, writes decrypt the edge sectors,
/// patch them, and encrypt them again (the caller serializes writes that may share a sector).
/// </summary>
internal static class EncryptedSectors
{
    private const int SectorBytes = LuksLimits.SectorBytes;

    public static async ValueTask ReadAsync(ISectorCipher cipher, IHostFile file, long regionOffset, long position, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        long start = position & ~(SectorBytes - 1L);
        long end = (position + buffer.Length + SectorBytes - 1) & ~(SectorBytes - 1L);
        if (start == position && end == position + buffer.Length)
        {
            await file.ReadZeroFilledAsync(regionOffset + position, buffer, cancellationToken).ConfigureAwait(false);
            cipher.Decrypt(buffer.Span, position / SectorBytes);
            return;
        }

        byte[] sectors = ArrayPool<byte>.Shared.Rent((int)(end - start));
        try
        {
            Memory<byte> span = sectors.AsMemory(0, (int)(end - start));
            await file.ReadZeroFilledAsync(regionOffset + start, span, cancellationToken).ConfigureAwait(false);
            cipher.Decrypt(span.Span, start / SectorBytes);
            span.Slice((int)(position - start), buffer.Length).CopyTo(buffer);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(sectors);
        }
    }

    public static async ValueTask WriteAsync(ISectorCipher cipher, IHostFile file, long regionOffset, long position, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        long start = position & ~(SectorBytes - 1L);
        long end = (position + data.Length + SectorBytes - 1) & ~(SectorBytes - 1L);
        byte[] sectors = ArrayPool<byte>.Shared.Rent((int)(end - start));
        try
        {
            Memory<byte> span = sectors.AsMemory(0, (int)(end - start));
            if (start != position || end != position + data.Length)
            {
                await file.ReadZeroFilledAsync(regionOffset + start, span, cancellationToken).ConfigureAwait(false);
                cipher.Decrypt(span.Span, start / SectorBytes);
            }

            data.CopyTo(span[(int)(position - start)..]);
            cipher.Encrypt(span.Span, start / SectorBytes);
            await file.WriteAsync(regionOffset + start, span, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(sectors);
        }
    }
}

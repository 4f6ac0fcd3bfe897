using System.IO.Compression;
using ICSharpCode.SharpZipLib.BZip2;

namespace ImgTool.Formats.ReadOnly;

/// <summary>
/// Decompresses one chunk into a buffer of exactly the size the format's table promises. The output never grows past
/// that buffer (one extra byte is tried, to tell a chunk that holds more than it should), so a decompression bomb costs
/// at most the promised size, which each format has already checked against its limit.
/// </summary>
internal static class ChunkDecompression
{
    /// <summary>zlib streams (RFC 1950: cloop blocks, DMG UDZO chunks).</summary>
    public static bool TryInflateZlib(ReadOnlySpan<byte> compressed, Span<byte> destination) =>
        TryDecompress(compressed, destination, static input => new ZLibStream(input, CompressionMode.Decompress));

    /// <summary>Raw deflate (RFC 1951: qcow v1 compressed clusters, which QEMU writes with a 4 KiB window).</summary>
    public static bool TryInflateRaw(ReadOnlySpan<byte> compressed, Span<byte> destination) =>
        TryDecompress(compressed, destination, static input => new DeflateStream(input, CompressionMode.Decompress));

    /// <summary>bzip2 streams (DMG UDBZ chunks).</summary>
    public static bool TryBunzip2(ReadOnlySpan<byte> compressed, Span<byte> destination) =>
        TryDecompress(compressed, destination, static input => new BZip2InputStream(input));

    private static bool TryDecompress(ReadOnlySpan<byte> compressed, Span<byte> destination, Func<Stream, Stream> open)
    {
        try
        {
            using var input = new MemoryStream(compressed.ToArray(), writable: false);
            using Stream stream = open(input);
            int read = stream.ReadAtLeast(destination, destination.Length, throwOnEndOfStream: false);
            if (read != destination.Length)
            {
                return false;
            }

            // Raw deflate without its end: a stream that stops exactly at the promised size is accepted, as zlib's
            // Z_BUF_ERROR is by QEMU's qcow reader. More output than promised is not.
            Span<byte> extra = stackalloc byte[1];
            return stream.Read(extra) == 0;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ICSharpCode.SharpZipLib.SharpZipBaseException or IndexOutOfRangeException or ArgumentException)
        {
            return false;
        }
    }
}

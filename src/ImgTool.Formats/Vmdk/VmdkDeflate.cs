using System.Buffers;
using System.IO.Compression;

namespace ImgTool.Formats.Vmdk;

/// <summary>
/// Grain compression: RFC 1950 zlib streams (compressAlgorithm 1, "deflate", as VMware and QEMU's compress()
/// write them), through the runtime's zlib-ng. Pure functions, safe on any thread.
/// </summary>
internal static class VmdkDeflate
{
    /// <summary>zlib's default level, QEMU's choice: the size VMware tools expect at a speed zlib-ng makes cheap.</summary>
    private const int Level = 6;

    /// <summary>Worst case zlib output for <paramref name="inputBytes"/> (zlib's compressBound plus slack).</summary>
    public static int MaxCompressedBytes(int inputBytes) => inputBytes + (inputBytes >> 12) + (inputBytes >> 14) + (inputBytes >> 25) + 64;

    /// <summary>Compresses <paramref name="input"/> into <paramref name="destination"/>; returns the length, or -1 when it does not fit.</summary>
    public static int Compress(ReadOnlySpan<byte> input, Span<byte> destination)
    {
        byte[] output = ArrayPool<byte>.Shared.Rent(MaxCompressedBytes(input.Length));
        try
        {
            using var target = new MemoryStream(output, 0, output.Length, writable: true);
            using (var zlib = new ZLibStream(target, new ZLibCompressionOptions { CompressionLevel = Level }, leaveOpen: true))
            {
                zlib.Write(input);
            }

            int length = (int)target.Position;
            if (length > destination.Length)
            {
                return -1;
            }

            output.AsSpan(0, length).CopyTo(destination);
            return length;
        }
        catch (NotSupportedException)
        {
            // The fixed-size stream is full: the data does not compress into the bound (it cannot happen for zlib).
            return -1;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(output);
        }
    }

    /// <summary>Inflates a zlib stream into <paramref name="destination"/>; returns the bytes produced, or -1 when the stream is bad.</summary>
    public static int Decompress(byte[] input, int offset, int length, Span<byte> destination)
    {
        try
        {
            using var source = new MemoryStream(input, offset, length, writable: false);
            using var zlib = new ZLibStream(source, CompressionMode.Decompress);
            int total = 0;
            while (total < destination.Length)
            {
                int read = zlib.Read(destination[total..]);
                if (read == 0)
                {
                    break;
                }

                total += read;
            }

            return total;
        }
        catch (InvalidDataException)
        {
            return -1;
        }
    }
}

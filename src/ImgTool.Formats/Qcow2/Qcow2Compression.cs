using System.Runtime.InteropServices;

namespace ImgTool.Formats.Qcow2;

/// <summary>
/// Cluster compression as QEMU does it (block/qcow2-threads.c): zlib as raw deflate with a 4 KiB
/// window (windowBits -12: QEMU inflates with that window, so a larger one would make clusters it
/// cannot read), zstd as ordinary frames. The system libz and libzstd do the work (qemu-img links
/// the same libraries); the runtime's DeflateStream cannot choose the window size.
/// </summary>
internal static unsafe partial class Qcow2Compression
{
    private const string Zlib = "libz.so.1";
    private const string Zstd = "libzstd.so.1";
    private const int ZOk = 0;
    private const int ZStreamEnd = 1;
    private const int ZBufError = -5;
    private const int ZFinish = 4;
    private const int ZDeflated = 8;
    private const int ZDefaultCompression = -1;
    private const int WindowBits = -12;
    private const int MemLevel = 9;
    private const int ZstdDefaultLevel = 3;

    /// <summary>Compresses one cluster. Returns the compressed length, or -1 when it does not fit in
    /// <paramref name="destination"/> (the cluster is then stored uncompressed, as QEMU does).</summary>
    public static int Compress(Qcow2CompressionType type, ReadOnlySpan<byte> source, Span<byte> destination) =>
        type == Qcow2CompressionType.Zstd ? ZstdCompress(source, destination) : DeflateCompress(source, destination);

    /// <summary>Decompresses exactly destination.Length bytes; false when the data is corrupt or too short.</summary>
    public static bool Decompress(Qcow2CompressionType type, ReadOnlySpan<byte> source, Span<byte> destination) =>
        type == Qcow2CompressionType.Zstd ? ZstdDecompress(source, destination) : Inflate(source, destination);

    private static int DeflateCompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        ZStream stream = default;
        fixed (byte* version = "1.2.11"u8)
        {
            if (deflateInit2_(&stream, ZDefaultCompression, ZDeflated, WindowBits, MemLevel, 0, version, sizeof(ZStream)) != ZOk)
            {
                throw new InvalidOperationException("zlib deflateInit2 failed");
            }
        }

        try
        {
            fixed (byte* input = source)
            fixed (byte* output = destination)
            {
                stream.NextIn = input;
                stream.AvailIn = (uint)source.Length;
                stream.NextOut = output;
                stream.AvailOut = (uint)destination.Length;
                int result = deflate(&stream, ZFinish);
                return result == ZStreamEnd ? (int)stream.TotalOut : -1;
            }
        }
        finally
        {
            _ = deflateEnd(&stream);
        }
    }

    private static bool Inflate(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        ZStream stream = default;
        fixed (byte* version = "1.2.11"u8)
        {
            if (inflateInit2_(&stream, WindowBits, version, sizeof(ZStream)) != ZOk)
            {
                throw new InvalidOperationException("zlib inflateInit2 failed");
            }
        }

        try
        {
            fixed (byte* input = source)
            fixed (byte* output = destination)
            {
                stream.NextIn = input;
                stream.AvailIn = (uint)source.Length;
                stream.NextOut = output;
                stream.AvailOut = (uint)destination.Length;
                int result = inflate(&stream, ZFinish);

                // As QEMU: success once the cluster is full, whatever follows (the last sector's tail
                // may hold the start of another compressed cluster).
                return (result == ZStreamEnd || result == ZBufError || result == ZOk) && stream.AvailOut == 0;
            }
        }
        finally
        {
            _ = inflateEnd(&stream);
        }
    }

    private static int ZstdCompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        fixed (byte* input = source)
        fixed (byte* output = destination)
        {
            nuint result = ZSTD_compress(output, (nuint)destination.Length, input, (nuint)source.Length, ZstdDefaultLevel);
            return ZSTD_isError(result) != 0 ? -1 : (int)result;
        }
    }

    private static bool ZstdDecompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        // The stored size is rounded up to sectors, so frames are decoded one at a time until the
        // cluster is full; QEMU's writer may in principle emit several frames.
        int consumed = 0;
        int produced = 0;
        fixed (byte* input = source)
        fixed (byte* output = destination)
        {
            while (produced < destination.Length)
            {
                if (consumed >= source.Length)
                {
                    return false;
                }

                nuint frame = ZSTD_findFrameCompressedSize(input + consumed, (nuint)(source.Length - consumed));
                if (ZSTD_isError(frame) != 0)
                {
                    return false;
                }

                nuint result = ZSTD_decompress(output + produced, (nuint)(destination.Length - produced), input + consumed, frame);
                if (ZSTD_isError(result) != 0 || result == 0)
                {
                    return false;
                }

                consumed += (int)frame;
                produced += (int)result;
            }
        }

        return true;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct ZStream
    {
        public byte* NextIn;
        public uint AvailIn;
        public nuint TotalIn;
        public byte* NextOut;
        public uint AvailOut;
        public nuint TotalOut;
        public nint Msg;
        public nint State;
        public nint ZAlloc;
        public nint ZFree;
        public nint Opaque;
        public int DataType;
        public nuint Adler;
        public nuint Reserved;
    }

    [LibraryImport(Zlib)]
    private static partial int deflateInit2_(ZStream* stream, int level, int method, int windowBits, int memLevel, int strategy, byte* version, int streamSize);

    [LibraryImport(Zlib)]
    private static partial int deflate(ZStream* stream, int flush);

    [LibraryImport(Zlib)]
    private static partial int deflateEnd(ZStream* stream);

    [LibraryImport(Zlib)]
    private static partial int inflateInit2_(ZStream* stream, int windowBits, byte* version, int streamSize);

    [LibraryImport(Zlib)]
    private static partial int inflate(ZStream* stream, int flush);

    [LibraryImport(Zlib)]
    private static partial int inflateEnd(ZStream* stream);

    [LibraryImport(Zstd)]
    private static partial nuint ZSTD_compress(byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int level);

    [LibraryImport(Zstd)]
    private static partial nuint ZSTD_decompress(byte* dst, nuint dstCapacity, byte* src, nuint compressedSize);

    [LibraryImport(Zstd)]
    private static partial nuint ZSTD_findFrameCompressedSize(byte* src, nuint srcSize);

    [LibraryImport(Zstd)]
    private static partial uint ZSTD_isError(nuint code);
}

using System.Buffers.Binary;
using System.Text;

namespace ImgTool.Bench;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014).
/// Ours rather than System.Random because the image must be byte-identical on every machine and
/// runtime version, and System.Random's sequence is not a compatibility promise.
/// </summary>
internal sealed class SplitMix64(ulong state)
{
    private const ulong GoldenGamma = 0x9E3779B97F4A7C15;

    private ulong _state = state;

    public ulong Next()
    {
        _state += GoldenGamma;
        return Mix(_state);
    }

    public static ulong Mix(ulong value)
    {
        value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9;
        value = (value ^ (value >> 27)) * 0x94D049BB133111EB;
        return value ^ (value >> 31);
    }
}

internal enum ChunkKind
{
    Hole,
    Random,
    Text,
}

/// <summary>
/// The deterministic sparse raw image the cases read: 1 MiB chunks, each independently a hole (~50%),
/// random bytes (~40%, incompressible, what a converter must copy) or text-like data (~10%, compressible),
/// scattered so that block status, zero detection and request splitting all get exercised.
/// </summary>
internal static class TestImage
{
    public const int ChunkSizeBytes = 1 << 20;

    // Bump when the layout or content rules change so that cached images are regenerated.
    private const string GeneratorVersion = "imgtool-bench-image/1";

    // A second odd constant (not the SplitMix gamma) so that chunk i's stream is not chunk i+1's shifted by one.
    private const ulong ChunkSeedMultiplier = 0xD1B54A32D192ED03;

    private const int RandomPercent = 40;
    private const int TextPercent = 10;

    // Short, repeated words with spaces and line breaks: compresses roughly as well as logs or source text.
    private static readonly byte[][] Vocabulary = Array.ConvertAll(
        [
            "the", "block", "cluster", "image", "disk", "sector", "table", "entry", "offset", "length",
            "read", "write", "zero", "data", "backing", "file", "format", "header", "refcount", "snapshot",
            "guest", "host", "virtual", "allocated", "qemu", "raw", "qcow2", "map", "compare", "convert",
            "and", "of",
        ],
        word => Encoding.ASCII.GetBytes(word));

    private const int WordsPerLine = 12;

    /// <summary>
    /// The kind and content source of one chunk depend only on (seed, index), never on the image size,
    /// so a 64 MiB smoke image is the first 64 chunks of the 1 GiB one.
    /// </summary>
    public static SplitMix64 ChunkGenerator(ulong seed, long chunkIndex, out ChunkKind kind)
    {
        var generator = new SplitMix64(SplitMix64.Mix(seed + ((ulong)chunkIndex * ChunkSeedMultiplier)));
        int percentile = (int)(generator.Next() % 100);
        kind = percentile < RandomPercent ? ChunkKind.Random
            : percentile < RandomPercent + TextPercent ? ChunkKind.Text
            : ChunkKind.Hole;
        return generator;
    }

    public static string MarkerPath(string imagePath) => imagePath + ".marker";

    private static string MarkerText(long sizeBytes, ulong seed) =>
        $"{GeneratorVersion}\nseed=0x{seed:X16}\nsize={sizeBytes}\n";

    /// <summary>True when <paramref name="path"/> was completed by this generator version with these parameters.</summary>
    public static bool IsCurrent(string path, long sizeBytes, ulong seed)
    {
        string marker = MarkerPath(path);
        return File.Exists(path)
            && new FileInfo(path).Length == sizeBytes
            && File.Exists(marker)
            && File.ReadAllText(marker) == MarkerText(sizeBytes, seed);
    }

    /// <summary>Marks a finished image (or a copy of one); written last so an interrupted run never looks complete.</summary>
    public static void WriteMarker(string path, long sizeBytes, ulong seed) =>
        File.WriteAllText(MarkerPath(path), MarkerText(sizeBytes, seed));

    /// <summary>Generates the image unless an identical one is already there. Returns true if it (re)generated.</summary>
    public static bool Ensure(string path, long sizeBytes, ulong seed)
    {
        if (IsCurrent(path, sizeBytes, seed))
        {
            return false;
        }

        File.Delete(MarkerPath(path));
        File.Delete(path);
        string temporaryPath = path + ".tmp";
        File.Delete(temporaryPath);
        Generate(temporaryPath, sizeBytes, seed);
        File.Move(temporaryPath, path);
        WriteMarker(path, sizeBytes, seed);
        return true;
    }

    private static void Generate(string path, long sizeBytes, ulong seed)
    {
        byte[] chunk = new byte[ChunkSizeBytes];
        using var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
        // SetLength and then writing only data chunks leaves every hole chunk unallocated (a sparse file).
        RandomAccess.SetLength(handle, sizeBytes);
        long chunkCount = sizeBytes / ChunkSizeBytes;
        for (long chunkIndex = 0; chunkIndex < chunkCount; chunkIndex++)
        {
            SplitMix64 generator = ChunkGenerator(seed, chunkIndex, out ChunkKind kind);
            switch (kind)
            {
                case ChunkKind.Random:
                    FillRandom(generator, chunk);
                    break;
                case ChunkKind.Text:
                    FillText(generator, chunk);
                    break;
                default:
                    continue;
            }

            RandomAccess.Write(handle, chunk, chunkIndex * ChunkSizeBytes);
        }
    }

    private static void FillRandom(SplitMix64 generator, Span<byte> chunk)
    {
        for (int offset = 0; offset < chunk.Length; offset += sizeof(ulong))
        {
            BinaryPrimitives.WriteUInt64LittleEndian(chunk[offset..], generator.Next());
        }
    }

    private static void FillText(SplitMix64 generator, Span<byte> chunk)
    {
        int offset = 0;
        int wordsOnLine = 0;
        while (offset < chunk.Length)
        {
            ReadOnlySpan<byte> word = Vocabulary[(int)(generator.Next() % (ulong)Vocabulary.Length)];
            int take = Math.Min(word.Length, chunk.Length - offset);
            word[..take].CopyTo(chunk[offset..]);
            offset += take;
            if (offset == chunk.Length)
            {
                break;
            }

            wordsOnLine++;
            bool endOfLine = wordsOnLine == WordsPerLine;
            chunk[offset++] = endOfLine ? (byte)'\n' : (byte)' ';
            if (endOfLine)
            {
                wordsOnLine = 0;
            }
        }
    }
}

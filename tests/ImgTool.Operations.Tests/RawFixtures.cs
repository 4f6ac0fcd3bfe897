using ImgTool.Block.Host;

namespace ImgTool.Operations.Tests;

/// <summary>Sparse raw files with data where a test says, so convert, compare and map meet real holes.</summary>
internal static class RawFixtures
{
    public const int MiB = 1 << 20;

    /// <summary>Writes <paramref name="sizeBytes"/> as a sparse file with the given extents filled with seeded random data.</summary>
    public static byte[] Write(string path, long sizeBytes, IEnumerable<(long Offset, int Length)> extents, int seed = 1)
    {
        byte[] model = new byte[sizeBytes];
        var random = new Random(seed);
        using var file = LinuxHostFile.Create(path);
        file.SetLength(sizeBytes);
        foreach (var (offset, length) in extents)
        {
            byte[] data = new byte[length];
            random.NextBytes(data);
            file.WriteAsync(offset, data).AsTask().GetAwaiter().GetResult();
            data.CopyTo(model, offset);
        }

        return model;
    }

    public static long Allocated(string path)
    {
        using var file = LinuxHostFile.Open(path, new HostOpenOptions(true, Lock: HostLockMode.None));
        return file.AllocatedBytes;
    }
}

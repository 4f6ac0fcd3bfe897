using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Block.Tests;

/// <summary>The same contract checked on the real Linux file (every cache mode) and the in-memory file.</summary>
public sealed class HostFileTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempDir _dir = new();

    public static TheoryData<string> Kinds => ["memory", "writeback", "writethrough", "none", "unsafe", "directsync"];

    public void Dispose() => _dir.Dispose();

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Unaligned_writes_read_back_and_extend_the_file(string kind)
    {
        using IHostFile file = Make(kind);
        byte[] data = Pattern(10_000, seed: 7);
        await file.WriteAsync(4097, data);
        Assert.Equal(4097 + 10_000, file.Length);

        byte[] back = new byte[10_002];
        int n = await file.ReadAsync(4096, back);
        Assert.Equal(10_001, n); // short only at EOF
        Assert.Equal(0, back[0]);
        Assert.Equal(data, back.AsSpan(1, 10_000).ToArray());

        // Overwrite inside, across a block boundary, and read everything again.
        await file.WriteAsync(8190, new byte[] { 1, 2, 3, 4 });
        byte[] all = new byte[file.Length];
        await file.ReadZeroFilledAsync(0, all);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, all[8190..8194]);
        Assert.Equal(data[..(8190 - 4097)], all[4097..8190]);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Extents_report_holes_and_data(string kind)
    {
        using IHostFile file = Make(kind);
        file.SetLength(8 * MiB);
        await file.WriteAsync(2 * MiB, Pattern(MiB, 1));

        HostExtent first = file.GetExtent(0, 8 * MiB);
        Assert.False(first.IsData);
        Assert.Equal(2 * MiB, first.LengthBytes);

        HostExtent data = file.GetExtent(2 * MiB, 6 * MiB);
        Assert.True(data.IsData);
        Assert.Equal(MiB, data.LengthBytes);

        HostExtent tail = file.GetExtent(3 * MiB, 5 * MiB);
        Assert.False(tail.IsData);
        Assert.Equal(5 * MiB, tail.LengthBytes);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Punch_hole_and_zero_range_read_as_zeros(string kind)
    {
        using IHostFile file = Make(kind);
        await file.WriteAsync(0, Pattern(4 * MiB, 3));
        file.PunchHole(MiB, MiB);
        file.ZeroRange(3 * MiB, 4096);

        byte[] all = new byte[4 * MiB];
        await file.ReadZeroFilledAsync(0, all);
        Assert.True(all.AsSpan(MiB, MiB).IndexOfAnyExcept((byte)0) < 0);
        Assert.True(all.AsSpan(3 * MiB, 4096).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(Pattern(4 * MiB, 3).AsSpan(0, MiB).ToArray(), all.AsSpan(0, MiB).ToArray());
        Assert.Equal(4 * MiB, file.Length);
        Assert.False(file.GetExtent(MiB, MiB).IsData);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Preallocation_allocates_without_changing_content(string kind)
    {
        using IHostFile file = Make(kind);
        file.Preallocate(0, 2 * MiB, writeZeros: false);
        Assert.Equal(2 * MiB, file.Length);
        Assert.True(file.AllocatedBytes >= 2 * MiB);
    }

    [Fact]
    public void Missing_file_and_directory_give_clear_errors()
    {
        var missing = Assert.Throws<HostIOException>(() => LinuxHostFile.Open(_dir.File("nope"), new HostOpenOptions(true)));
        Assert.Equal("Could not open: No such file or directory", missing.Message);
        var directory = Assert.Throws<HostIOException>(() => LinuxHostFile.Open(_dir.Path, new HostOpenOptions(true)));
        Assert.Equal("Could not open: Is a directory", directory.Message);
    }

    [Fact]
    public void Read_only_files_refuse_writes()
    {
        string path = _dir.File("ro.img");
        LinuxHostFile.Create(path).Dispose();
        using var file = LinuxHostFile.Open(path, new HostOpenOptions(true));
        Assert.Throws<HostIOException>(() => file.SetLength(10));
    }

    [Theory]
    [InlineData(CacheMode.None, 4096)]
    [InlineData(CacheMode.DirectSync, 4096)]
    [InlineData(CacheMode.Writethrough, 1)]
    [InlineData(CacheMode.Writeback, 1)]
    public void Only_the_direct_modes_bypass_the_page_cache(CacheMode cache, int alignment)
    {
        using var file = LinuxHostFile.Create(_dir.File($"align-{cache}.img"), cache);
        Assert.Equal(alignment, file.Alignment);
    }

    private IHostFile Make(string kind)
    {
        if (kind == "memory")
        {
            return new MemoryHostFile();
        }

        CacheMode cache = Enum.Parse<CacheMode>(kind, ignoreCase: true);
        return LinuxHostFile.Create(_dir.File($"{kind}-{Guid.NewGuid():N}.img"), cache);
    }

    internal static byte[] Pattern(int length, int seed)
    {
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }
}

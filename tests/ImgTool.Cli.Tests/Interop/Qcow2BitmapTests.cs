using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ImgTool.Block.Devices;
using ImgTool.Formats;
using static ImgTool.Cli.Tests.Interop.Qcow2Interop;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// Persistent dirty bitmaps: the same writes, write-zeroes, discards and compressed writes go to two copies of an
/// image, one through qemu-io and one through imgtool, and QEMU itself (qemu-nbd exporting the bitmap, qemu-img
/// map reading it) must find the same dirty granules in both.
/// </summary>
public sealed class Qcow2BitmapTests : IDisposable
{
    private const long MiB = 1 << 20;
    private const long DiskBytes = 64 * MiB;
    private static readonly ImageOpener Opener = new(FormatRegistry.Default);
    private readonly TempDir _dir = new();
    private int _sockets;

    public void Dispose() => _dir.Dispose();

    private enum OpKind
    {
        Write,
        Zero,
        Discard,
        Compressed,
    }

    private sealed record Op(OpKind Kind, long Offset, long Length, byte Pattern);

    [Theory]
    [InlineData("cluster_size=64k", 1)]
    [InlineData("cluster_size=4k,refcount_bits=1", 2)]
    [InlineData("cluster_size=512", 3)]
    [InlineData("cluster_size=64k,extended_l2=on", 4)]
    [InlineData("compat=1.1,cluster_size=2M", 5)]
    public async Task Our_writes_dirty_the_same_granules_as_qemus(string options, int seed)
    {
        string original = _dir.File("original.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", "-o", options, original, DiskBytes.ToString(CultureInfo.InvariantCulture))).ExitCode);
        await AddBitmapAsync(original, "default");
        await AddBitmapAsync(original, "fine", "--granularity", "4096");
        await AddBitmapAsync(original, "coarse", "--granularity", "4M");
        await AddBitmapAsync(original, "frozen", "--granularity", "128k");
        await AddBitmapAsync(original, "stale");

        // Bits already set before the copies, so that stored clusters are loaded, changed and replaced.
        await QemuIo(original, "write -P 1 0 100k", "write -P 2 40M 3M", "discard 60M 1k");
        Assert.Equal(0, (await QemuImg("bitmap", "--disable", original, "frozen")).ExitCode);
        List<(long, long)> frozenBefore = await DirtyRangesAsync(original, "frozen");
        Assert.NotEmpty(frozenBefore);
        SetInUse(original, "stale");

        string theirs = _dir.File("theirs.qcow2");
        string ours = _dir.File("ours.qcow2");
        File.Copy(original, theirs);
        File.Copy(original, ours);
        long cluster = ClusterBytes(options);
        IReadOnlyList<Op> ops = Operations(seed, cluster, compressed: !options.Contains("cluster_size=512", StringComparison.Ordinal));
        await QemuIo(theirs, [.. ops.Select(QemuIoCommand)]);
        await ApplyThroughLibraryAsync(ours, ops);

        foreach (string name in new[] { "default", "fine", "coarse", "frozen" })
        {
            List<(long, long)> expected = await DirtyRangesAsync(theirs, name);
            List<(long, long)> actual = await DirtyRangesAsync(ours, name);
            Assert.True(expected.SequenceEqual(actual), $"bitmap {name}: qemu {Show(expected)}\nimgtool {Show(actual)}");
        }

        Assert.Equal(frozenBefore, await DirtyRangesAsync(ours, "frozen"));
        Assert.NotEqual(frozenBefore, await DirtyRangesAsync(ours, "default"));

        // The flags as QEMU leaves them: enabled ones "auto", none in use but the one that already was.
        Assert.Equal(BitmapInfo(await QemuImg("info", "--output=json", theirs)), BitmapInfo(await QemuImg("info", "--output=json", ours)));
        string flags = BitmapInfo(await QemuImg("info", "--output=json", ours));
        Assert.Equal(1, CountOf(flags, "in-use"));
        Assert.Equal(4, CountOf(flags, "auto"));
        Assert.Equal(EntryBytes(original, "stale"), EntryBytes(ours, "stale"));
        await AssertInfoAgreesAsync(ours);
        await AssertQemuCleanAsync(ours);
        await AssertChecksAgreeAsync(ours);
    }

    [Fact]
    public async Task Bitmaps_are_listed_counted_and_kept_valid_when_we_write()
    {
        string image = _dir.File("bitmaps.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", image, "64M")).ExitCode);
        await AddBitmapAsync(image, "b1");
        await AddBitmapAsync(image, "b2", "-g", "128k");
        await QemuIo(image, "write -P 1 0 1M");
        await AssertChecksAgreeAsync(image);
        await AssertInfoAgreesAsync(image);

        await RandomWritesAsync(image, _dir.File("model.raw"), 64 * MiB, seed: 3, backing: true);
        await AssertQemuCleanAsync(image);
        await AssertChecksAgreeAsync(image);
        await AssertInfoAgreesAsync(image);
        Assert.DoesNotContain("in-use", (await QemuImg("info", image)).Out, StringComparison.Ordinal);
        Assert.NotEmpty(await DirtyRangesAsync(image, "b2"));
    }

    [Fact]
    public async Task Convert_onto_an_image_dirties_what_it_writes()
    {
        string source = _dir.File("source.raw");
        _ = SparseFile(source, 32 * MiB, (3 * MiB, 5000), (20 * MiB, 300_000));
        string target = _dir.File("target.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", target, "32M")).ExitCode);
        await AddBitmapAsync(target, "b", "-g", "1M");

        RunResult convert = await Imgtool("convert", "-n", "-O", "qcow2", source, target);
        Assert.True(convert.ExitCode == 0, convert.ToString());

        List<(long Start, long Length)> dirty = await DirtyRangesAsync(target, "b");
        Assert.Contains(dirty, r => r.Start <= 3 * MiB && r.Start + r.Length >= 4 * MiB);
        Assert.Contains(dirty, r => r.Start <= 20 * MiB && r.Start + r.Length >= 21 * MiB);
        Assert.DoesNotContain("in-use", (await QemuImg("info", target)).Out, StringComparison.Ordinal);
        Assert.Equal(0, (await QemuImg("compare", "-f", "raw", "-F", "qcow2", source, target)).ExitCode);
        await AssertQemuCleanAsync(target);
    }

    [Fact]
    public async Task Snapshots_keep_working_and_revert_is_refused_as_qemu_refuses_it()
    {
        string image = _dir.File("snap.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", image, "16M")).ExitCode);
        await QemuIo(image, "write -P 1 0 1M");
        await AddBitmapAsync(image, "b");
        Assert.Equal(0, (await Imgtool("snapshot", "-c", "s1", image)).ExitCode);
        await ApplyThroughLibraryAsync(image, [new Op(OpKind.Write, 5 * MiB, 4096, 3)]);
        Assert.Equal(0, (await Imgtool("snapshot", "-c", "s2", image)).ExitCode);
        Assert.Equal(0, (await Imgtool("snapshot", "-d", "s1", image)).ExitCode);
        await AssertQemuCleanAsync(image);
        await AssertChecksAgreeAsync(image);
        Assert.Equal([(5 * MiB, 64 * 1024L)], await DirtyRangesAsync(image, "b"));

        RunResult ourApply = await Imgtool("snapshot", "-a", "s2", image);
        RunResult theirApply = await QemuImg("snapshot", "-a", "s2", image);
        Assert.NotEqual(0, theirApply.ExitCode);
        Assert.NotEqual(0, ourApply.ExitCode);
        Assert.Contains("dirty bitmaps", ourApply.Err, StringComparison.Ordinal);
        await AssertQemuCleanAsync(image);
        Assert.DoesNotContain("in-use", (await QemuImg("info", image)).Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_all_ones_table_entry_is_read_as_all_dirty_and_kept()
    {
        string original = _dir.File("ones.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", "-o", "cluster_size=4k", original, "64M")).ExitCode);
        await AddBitmapAsync(original, "b", "-g", "512");

        // 64 MiB in 512-byte granules is 16 KiB of bits: four table entries. The second says "all ones" without
        // a cluster (QEMU reads such entries but never writes them).
        long table = BinaryPrimitives.ReadInt64BigEndian(EntryBytes(original, "b"));
        using (var file = new FileStream(original, FileMode.Open))
        {
            byte[] entry = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(entry, 1);
            file.Position = table + 8;
            file.Write(entry);
        }

        Assert.Equal([(16 * MiB, 16 * MiB)], await DirtyRangesAsync(original, "b"));
        string theirs = _dir.File("ones-theirs.qcow2");
        string ours = _dir.File("ones-ours.qcow2");
        File.Copy(original, theirs);
        File.Copy(original, ours);
        Op[] ops = [new(OpKind.Write, (20 * MiB) + 3, 100, 1), new(OpKind.Zero, 50 * MiB, 1000, 0)];
        await QemuIo(theirs, [.. ops.Select(QemuIoCommand)]);
        await ApplyThroughLibraryAsync(ours, ops);

        List<(long Start, long Length)> expected = await DirtyRangesAsync(theirs, "b");
        Assert.Equal([(16 * MiB, 16 * MiB), (50 * MiB, 1024L)], expected);
        Assert.Equal(expected, await DirtyRangesAsync(ours, "b"));
        await AssertQemuCleanAsync(ours);
        await AssertChecksAgreeAsync(ours);
    }

    [Fact]
    public async Task A_bitmap_beyond_qemus_size_limit_stops_the_write_with_a_clear_error()
    {
        string image = _dir.File("huge.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", image, "64M")).ExitCode);
        await AddBitmapAsync(image, "b");
        byte[] before = await File.ReadAllBytesAsync(image);

        // 100000 table entries of 64 KiB clusters: 6 GB of bitmap data, beyond QEMU's 512 MiB.
        long entry = EntryOffset(image, "b");
        using (var file = new FileStream(image, FileMode.Open))
        {
            byte[] size = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(size, 100_000);
            file.Position = entry + 8;
            file.Write(size);
        }

        await using (IImage device = await Opener.OpenAsync(image, new ImageOpenRequest("qcow2", ReadOnly: false)))
        {
            var error = await Assert.ThrowsAnyAsync<ImgTool.Block.Errors.ImgToolException>(async () => await device.WriteAsync(0, new byte[512]));
            Assert.Contains("too large", error.Message, StringComparison.Ordinal);
            await Assert.ThrowsAnyAsync<ImgTool.Block.Errors.ImgToolException>(async () => await device.WriteAsync(0, new byte[512]));
        }

        byte[] after = await File.ReadAllBytesAsync(image);
        before.AsSpan((int)entry + 8, 4).CopyTo(after.AsSpan((int)entry + 8));
        Assert.True(before.AsSpan().SequenceEqual(after), "nothing but the patched entry may change");
    }

    private static async Task AddBitmapAsync(string image, string name, params string[] options)
    {
        RunResult add = await QemuImg(["bitmap", "--add", .. options, image, name]);
        Assert.True(add.ExitCode == 0, add.ToString());
    }

    private static IReadOnlyList<Op> Operations(int seed, long cluster, bool compressed)
    {
        var random = new Random(seed);
        var ops = new List<Op>();
        if (compressed)
        {
            // QEMU only writes compressed clusters where nothing is allocated yet, so these come first, on
            // distinct clusters between 44 MiB and 60 MiB, which nothing wrote before.
            long first = (44 * MiB) / cluster;
            long count = ((60 * MiB) / cluster) - first;
            foreach (long index in Enumerable.Range(0, (int)count).OrderBy(_ => random.Next()).Take(5))
            {
                ops.Add(new Op(OpKind.Compressed, (first + index) * cluster, cluster, (byte)random.Next(1, 256)));
            }
        }

        ops.AddRange(
        [
            new(OpKind.Write, 0, 1, 3),
            new(OpKind.Write, MiB + 100, 70_000, 4),
            new(OpKind.Zero, 5 * MiB, 64 * 1024, 0),
            new(OpKind.Zero, (9 * MiB) + 1000, 200_000, 0),
            new(OpKind.Discard, 12 * MiB, MiB, 0),
            new(OpKind.Discard, (20 * MiB) + 4096, 3000, 0),
            new(OpKind.Write, DiskBytes - 5000, 5000, 5),

            // Requests that end one byte into a granule, or start on its last byte, in otherwise clean places.
            new(OpKind.Write, (2 * MiB) - 10, 11, 6),
            new(OpKind.Zero, (3 * MiB) + (64 * 1024) - 1, 2, 0),
            new(OpKind.Discard, (7 * MiB) - 1, 2, 0),
            new(OpKind.Write, (30 * MiB) + (4 * 1024) - 1, (4 * 1024) + 2, 7),
        ]);
        for (int i = 0; i < 24; i++)
        {
            OpKind kind = (OpKind)random.Next(3);
            long offset = random.NextInt64(DiskBytes);
            long length = Math.Min(DiskBytes - offset, random.Next(10) switch
            {
                < 5 => random.Next(1, 5000),
                < 9 => random.Next(1, 100_000),
                _ => random.Next(1, (int)MiB),
            });
            ops.Add(new Op(kind, offset, length, (byte)random.Next(1, 256)));
        }

        return ops;
    }

    private static string QemuIoCommand(Op op) => op.Kind switch
    {
        OpKind.Write => $"write -P {op.Pattern} {op.Offset} {op.Length}",
        OpKind.Zero => $"write -z {op.Offset} {op.Length}",
        OpKind.Discard => $"discard {op.Offset} {op.Length}",
        _ => $"write -c -P {op.Pattern} {op.Offset} {op.Length}",
    };

    private static async Task ApplyThroughLibraryAsync(string image, IEnumerable<Op> ops)
    {
        await using IImage device = await Opener.OpenAsync(image, new ImageOpenRequest("qcow2", ReadOnly: false));
        foreach (Op op in ops)
        {
            switch (op.Kind)
            {
                case OpKind.Write:
                    byte[] data = new byte[op.Length];
                    Array.Fill(data, op.Pattern);
                    await device.WriteAsync(op.Offset, data);
                    break;
                case OpKind.Zero:
                    await device.WriteZeroesAsync(op.Offset, op.Length, BlockZeroFlags.None);
                    break;
                case OpKind.Discard:
                    await device.DiscardAsync(op.Offset, op.Length);
                    break;
                default:
                    var packer = (ICompressedWrites)device;
                    byte[] unit = new byte[op.Length];
                    Array.Fill(unit, op.Pattern);
                    byte[] packed = new byte[packer.MaxCompressedBytes];
                    int n = packer.Compress(unit, packed);
                    await packer.WriteCompressedAsync(op.Offset, n < 0 ? unit : packed.AsMemory(0, n), n >= 0);
                    break;
            }
        }

        await device.FlushAsync();
    }

    /// <summary>The dirty ranges of a bitmap as QEMU reads them: qemu-nbd exports the bitmap as a block status
    /// context, and qemu-img map over NBD with x-dirty-bitmap reports dirty granules as "data": false.</summary>
    private async Task<List<(long Start, long Length)>> DirtyRangesAsync(string image, string bitmap)
    {
        int n = Interlocked.Increment(ref _sockets);
        string socket = _dir.File($"nbd{n}.sock");
        string pidFile = _dir.File($"nbd{n}.pid");
        RunResult serve = await Qemu("qemu-nbd", "-r", "-k", socket, "-B", bitmap, "-f", "qcow2", "--fork", "--pid-file", pidFile, image);
        Assert.True(serve.ExitCode == 0, serve.ToString());
        try
        {
            RunResult map = await QemuImg("map", "--output=json", "--image-opts", $"driver=nbd,server.type=unix,server.path={socket},x-dirty-bitmap=qemu:dirty-bitmap:{bitmap}");
            Assert.True(map.ExitCode == 0, map.ToString());
            using JsonDocument json = JsonDocument.Parse(map.Out);
            var ranges = new List<(long Start, long Length)>();
            foreach (JsonElement extent in json.RootElement.EnumerateArray())
            {
                if (extent.GetProperty("data").GetBoolean())
                {
                    continue;
                }

                long start = extent.GetProperty("start").GetInt64();
                long length = extent.GetProperty("length").GetInt64();
                if (ranges.Count > 0 && ranges[^1].Start + ranges[^1].Length == start)
                {
                    ranges[^1] = (ranges[^1].Start, ranges[^1].Length + length);
                }
                else
                {
                    ranges.Add((start, length));
                }
            }

            return ranges;
        }
        finally
        {
            await AwaitServerExitAsync(pidFile);
        }
    }

    /// <summary>
    /// Without --persistent the server leaves after its one client, but it may still hold the image lock for a
    /// moment, which would make the next command on the image fail. It is not our child (--fork), so its end is
    /// seen in /proc: gone, or a zombie that has closed everything. Should it linger, it is stopped.
    /// </summary>
    private static async Task AwaitServerExitAsync(string pidFile)
    {
        if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
        {
            return;
        }

        string stat = $"/proc/{pid}/stat";
        for (int wait = 0; wait < 200; wait++)
        {
            if (!IsRunning(stat))
            {
                return;
            }

            await Task.Delay(50);
        }

        try
        {
            using var server = Process.GetProcessById(pid);
            if (server.ProcessName.StartsWith("qemu-nbd", StringComparison.Ordinal))
            {
                server.Kill();
            }
        }
        catch (ArgumentException)
        {
            // already gone
        }
    }

    private static bool IsRunning(string statPath)
    {
        try
        {
            // "pid (comm) state ...": the state follows the last ')'.
            string stat = File.ReadAllText(statPath);
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z') is false;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static string Show(List<(long Start, long Length)> ranges) => string.Join(' ', ranges.Select(r => $"{r.Start}+{r.Length}"));

    private static int CountOf(string text, string word) => (text.Length - text.Replace(word, string.Empty, StringComparison.Ordinal).Length) / word.Length;

    private static long ClusterBytes(string options)
    {
        string? size = options.Split(',').FirstOrDefault(o => o.StartsWith("cluster_size=", StringComparison.Ordinal))?["cluster_size=".Length..];
        return size switch
        {
            null => 64 * 1024,
            _ when size.EndsWith('k') => long.Parse(size[..^1], CultureInfo.InvariantCulture) * 1024,
            _ when size.EndsWith('M') => long.Parse(size[..^1], CultureInfo.InvariantCulture) * MiB,
            _ => long.Parse(size, CultureInfo.InvariantCulture),
        };
    }

    private static string BitmapInfo(RunResult info)
    {
        Assert.True(info.ExitCode == 0, info.ToString());
        using JsonDocument json = JsonDocument.Parse(info.Out);
        return json.RootElement.GetProperty("format-specific").GetProperty("data").GetProperty("bitmaps").ToString();
    }

    /// <summary>Flags a bitmap in use by editing its directory entry, as a program that crashed would leave it.</summary>
    private static void SetInUse(string image, string name)
    {
        long entry = EntryOffset(image, name);
        using var file = new FileStream(image, FileMode.Open);
        byte[] flags = new byte[4];
        file.Position = entry + 12;
        file.ReadExactly(flags);
        BinaryPrimitives.WriteUInt32BigEndian(flags, BinaryPrimitives.ReadUInt32BigEndian(flags) | 1);
        file.Position = entry + 12;
        file.Write(flags);
    }

    private static byte[] EntryBytes(string image, string name)
    {
        long entry = EntryOffset(image, name);
        byte[] bytes = File.ReadAllBytes(image);
        return bytes.AsSpan((int)entry, 24).ToArray();
    }

    /// <summary>Where a bitmap's directory entry lies: the bitmaps header extension (0x23852875) gives the
    /// directory, whose entries are 24 bytes, extra data, name, padded to 8.</summary>
    private static long EntryOffset(string image, string name)
    {
        byte[] file = File.ReadAllBytes(image);
        int position = (int)BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(100));
        while (true)
        {
            uint type = BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(position));
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(position + 4));
            Assert.NotEqual(0u, type);
            if (type == 0x23852875)
            {
                uint count = BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(position + 8));
                long directory = BinaryPrimitives.ReadInt64BigEndian(file.AsSpan(position + 24));
                long entry = directory;
                for (uint i = 0; i < count; i++)
                {
                    int nameSize = BinaryPrimitives.ReadUInt16BigEndian(file.AsSpan((int)entry + 18));
                    int extra = (int)BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan((int)entry + 20));
                    if (Encoding.UTF8.GetString(file, (int)entry + 24 + extra, nameSize) == name)
                    {
                        return entry;
                    }

                    entry += (24 + extra + nameSize + 7) & ~7;
                }

                throw new InvalidOperationException($"no bitmap {name}");
            }

            position += 8 + ((length + 7) & ~7);
        }
    }
}

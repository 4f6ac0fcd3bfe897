using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Formats.Vhd;
using static ImgTool.Formats.Tests.Vhd.VhdTestSupport;

namespace ImgTool.Formats.Tests.Vhd;

/// <summary>Images laid out as other tools write them (Hyper-V's partial sector bitmaps, damaged locators, stale parents).</summary>
public sealed class VhdForeignImageTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ImageOpener _opener = new(FormatRegistry.Default);

    public void Dispose() => _dir.Dispose();

    /// <summary>Hyper-V sets bitmap bits only for the sectors it wrote; clear sectors read as zeros whatever the host holds.</summary>
    [Fact]
    public async Task Sectors_with_a_clear_bitmap_bit_read_as_zeros_and_show_as_zero()
    {
        MemoryHostFile file = await CreateInMemory(10 * MiB, "force_size=on");
        await using (IImage writer = await Open(file))
        {
            await writer.WriteAsync(0, Pattern(8192, 1));
        }

        // Block 0's bitmap sits right after the BAT (2048); keep only sectors 2..5.
        byte[] bitmap = new byte[512];
        VhdBitmaps.SetRange(bitmap, 2, 4);
        await file.WriteAsync(2048, bitmap);
        PatchFooter(file, 0, f => "win "u8.CopyTo(f.AsSpan(VhdFooter.CreatorApplicationOffset)));

        await using IImage image = await Open(file);
        byte[] back = new byte[8192];
        await image.ReadAsync(0, back);
        byte[] expected = new byte[8192];
        Pattern(8192, 1).AsSpan(1024, 2048).CopyTo(expected.AsSpan(1024));
        Assert.Equal(expected, back);
        Assert.Equal(new BlockStatus(BlockStatusKind.Zero, 1024, Allocated: false), await image.GetStatusAsync(0, MiB));
        Assert.Equal(new BlockStatus(BlockStatusKind.Data, 2048, 2560 + 1024), await image.GetStatusAsync(1024, MiB));
        Assert.Equal(BlockStatusKind.Zero, (await image.GetStatusAsync(3072, MiB)).Kind);

        // A write into a clear sector sets its bit and keeps the neighbours.
        await using (IImage writer = await Open(file))
        {
            await writer.WriteAsync(100, new byte[] { 9 });
        }

        await using IImage again = await Open(file);
        await again.ReadAsync(0, back);
        expected[100] = 9;
        Assert.Equal(expected, back);
    }

    [Fact]
    public async Task A_locator_pointing_outside_the_file_is_skipped_for_the_next()
    {
        (string child, _) = await MakeChain();
        PatchLocator(child, 0, offset: 1L << 40, length: 64);
        await using (IImage image = await _opener.OpenAsync(child, new ImageOpenRequest()))
        {
            Assert.Equal(Path.Combine(Path.GetDirectoryName(child)!, "base.vhd"), ((IBackingChain)image).BackingFileName); // the absolute locator
            Assert.NotNull(((IBackingChain)image).Backing);
        }

        PatchLocator(child, 0, offset: 0, length: uint.MaxValue);
        await using IImage image2 = await _opener.OpenAsync(child, new ImageOpenRequest());
        Assert.NotNull(((IBackingChain)image2).Backing);
    }

    [Fact]
    public async Task A_parent_with_another_time_stamp_is_refused()
    {
        (string child, string parent) = await MakeChain();
        using (var host = LinuxHostFile.Open(parent, new HostOpenOptions(ReadOnly: false)))
        {
            byte[] footer = new byte[512];
            await host.ReadZeroFilledAsync(0, footer);
            BinaryPrimitives.WriteUInt32BigEndian(footer.AsSpan(VhdFooter.TimeStampOffset), 1234);
            BinaryPrimitives.WriteUInt32BigEndian(footer.AsSpan(VhdFooter.ChecksumOffset), VhdFooter.ComputeChecksum(footer, VhdFooter.ChecksumOffset));
            await host.WriteAsync(0, footer);
            await host.WriteAsync(host.Length - 512, footer);
        }

        File.SetLastWriteTimeUtc(parent, new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        var e = await Assert.ThrowsAsync<BackingFileException>(async () => await _opener.OpenAsync(child, new ImageOpenRequest()));
        Assert.Contains("changed", e.Message, StringComparison.Ordinal);

        // Without opening the chain (qemu-img info's way) the child still opens and names its parent.
        await using IImage alone = await _opener.OpenAsync(child, new ImageOpenRequest(OpenBacking: false));
        Assert.Equal("base.vhd", ((IBackingChain)alone).BackingFileName);
    }

    /// <summary>Concurrent writes to the same blocks of a differencing disk: every bitmap update survives.</summary>
    [Fact]
    public async Task Concurrent_writes_to_a_differencing_disk_keep_every_sector()
    {
        (string child, string parent) = await MakeChain();
        byte[] model = new byte[4 * MiB];
        await using (IImage p = await _opener.OpenAsync(parent, new ImageOpenRequest(ReadOnly: false)))
        {
            new Random(1).NextBytes(model);
            await p.WriteAsync(0, model);
        }

        await using (IImage image = await _opener.OpenAsync(child, new ImageOpenRequest(ReadOnly: false)))
        {
            // 256 interleaved 4 KiB writes (every other 4 KiB of the disk), issued all at once.
            var writes = new List<Task>();
            for (int i = 0; i < 256; i++)
            {
                long offset = i * 2L * 4096 + (i % 2 == 0 ? 0 : 4096 * 256 * 2 % (4 * MiB));
                offset %= 4 * MiB;
                byte[] data = Pattern(4096, i + 100);
                data.CopyTo(model, offset);
                writes.Add(Task.Run(async () => await image.WriteAsync(offset, data)));
            }

            await Task.WhenAll(writes);
        }

        await using IImage reopened = await _opener.OpenAsync(child, new ImageOpenRequest());
        byte[] back = new byte[4 * MiB];
        await reopened.ReadAsync(0, back);
        Assert.Equal(model, back);
    }

    private async Task<(string Child, string Parent)> MakeChain()
    {
        string parent = _dir.File("base.vhd");
        string child = _dir.File("child.vhd");
        await ImageFactory.CreateAsync(parent, VhdFormat.Instance, new ImageCreateRequest(4 * MiB, ImageOptions.Parse(["force_size=on"])));
        await ImageFactory.CreateAsync(child, VhdFormat.Instance, new ImageCreateRequest(4 * MiB, ImageOptions.Empty, "base.vhd", "vpc"));
        return (child, parent);
    }

    private static void PatchLocator(string path, int index, long offset, uint length)
    {
        using var host = LinuxHostFile.Open(path, new HostOpenOptions(ReadOnly: false));
        byte[] header = new byte[VhdDynamicHeader.SizeBytes];
        host.ReadZeroFilledAsync(VhdFooter.SizeBytes, header).AsTask().GetAwaiter().GetResult();
        Span<byte> entry = header.AsSpan(VhdDynamicHeader.ParentLocatorsOffset + (index * VhdParentLocator.SizeBytes), VhdParentLocator.SizeBytes);
        BinaryPrimitives.WriteUInt32BigEndian(entry[8..], length);
        BinaryPrimitives.WriteUInt64BigEndian(entry[16..], (ulong)offset);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(VhdDynamicHeader.ChecksumOffset), VhdFooter.ComputeChecksum(header, VhdDynamicHeader.ChecksumOffset));
        host.WriteAsync(VhdFooter.SizeBytes, header).AsTask().GetAwaiter().GetResult();
    }
}

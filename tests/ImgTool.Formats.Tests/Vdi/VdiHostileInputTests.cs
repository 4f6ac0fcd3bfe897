using FsCheck.Xunit;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Formats.Vdi;
using static ImgTool.Formats.Tests.Vdi.VdiTestSupport;

namespace ImgTool.Formats.Tests.Vdi;

/// <summary>Damaged and hostile images: a typed error (one line in the CLI), never a crash, a hang or a huge allocation.</summary>
public sealed class VdiHostileInputTests
{
    private static async Task<MemoryHostFile> Written()
    {
        var file = await CreateInMemory(5 * MiB);
        await using IImage image = await Open(file);
        await image.WriteAsync(MiB, Pattern(MiB, 1));      // slot 0
        await image.WriteAsync(0, Pattern(4096, 2));        // slot 1
        await image.WriteAsync(4 * MiB, Pattern(4096, 3));  // slot 2
        return file;
    }

    [Theory]
    [InlineData(VdiHeader.BlockBytesOffset, 1u << 30, "block size")]
    [InlineData(VdiHeader.BlockBytesOffset, 3000u, "block size")]
    [InlineData(VdiHeader.BlockCountOffset, 0x3fffffffu, "entries")]
    [InlineData(VdiHeader.BlockCountOffset, 1u << 20, "past the end of the file")]
    [InlineData(VdiHeader.BlockCountOffset, 1u, "larger than its")]
    [InlineData(VdiHeader.BlockMapOffsetOffset, 0x7fff_fe00u, "past the end of the file")]
    [InlineData(VdiHeader.BlockMapOffsetOffset, 100u, "block map offset")]
    [InlineData(VdiHeader.DataOffsetOffset, 512u, "data offset")]
    [InlineData(VdiHeader.HeaderBytesOffset, 16u, "header size")]
    [InlineData(VdiHeader.ImageTypeOffset, 9u, "image type")]
    [InlineData(VdiHeader.BlockExtraBytesOffset, 3u, "extra")]
    public async Task Hostile_header_fields_are_refused_with_a_clear_error(int offset, uint value, string text)
    {
        var file = await Written();
        PatchU32(file, offset, value);
        var e = await Assert.ThrowsAnyAsync<ImgToolException>(async () => await Open(file));
        Assert.Contains(text, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(VdiHeader.VersionOffset, 0x00000002u)]
    [InlineData(VdiHeader.SectorBytesOffset, 4096u)]
    [InlineData(VdiHeader.ImageTypeOffset, 3u)]
    public async Task Unsupported_variants_say_so(int offset, uint value)
    {
        var file = await Written();
        PatchU32(file, offset, value);
        await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await Open(file));
    }

    [Fact]
    public async Task A_truncated_header_and_a_differencing_image_without_parent_uuid_are_refused()
    {
        var file = await Written();
        byte[] head = ReadAll(file).AsSpan(0, 300).ToArray();
        var truncated = new MemoryHostFile("t.vdi");
        await truncated.WriteAsync(0, head);
        var e = await Assert.ThrowsAsync<ImageCorruptException>(async () => await Open(truncated));
        Assert.Contains("ends inside the VDI header", e.Message, StringComparison.Ordinal);

        PatchU32(file, VdiHeader.ImageTypeOffset, (uint)VdiImageType.Differencing);
        e = await Assert.ThrowsAsync<ImageCorruptException>(async () => await Open(file));
        Assert.Contains("linkage UUID is null", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_entry_past_the_block_count_fails_reads_and_check_repairs_it()
    {
        var file = await Written();
        SetEntry(file, 3, 1000);
        await using IImage image = await Open(file);
        var e = await Assert.ThrowsAsync<ImageCorruptException>(async () => await image.ReadAsync(3 * MiB, new byte[512]));
        Assert.Contains("run 'check -r all'", e.Message, StringComparison.Ordinal);
        CheckReport report = await ((ICheckable)image).CheckAsync(CheckRepair.None);
        Assert.Equal(1, report.Corruptions); // as QEMU: the entry; the count leaves out-of-range entries out
        CheckReport repaired = await ((ICheckable)image).CheckAsync(CheckRepair.All);
        Assert.Equal(1, repaired.CorruptionsFixed);
        Assert.Equal(0, await Corruptions(image));
        byte[] back = new byte[512];
        await image.ReadAsync(3 * MiB, back);
        Assert.All(back, b => Assert.Equal(0, b));
        await image.WriteAsync(3 * MiB, new byte[] { 1 });
        Assert.Equal(0, await Corruptions(image));
    }

    [Fact]
    public async Task Shared_slots_refuse_writes_and_the_repair_gives_each_block_its_own_copy()
    {
        var file = await Written();
        byte[] before = new byte[5 * MiB];
        SetEntry(file, 2, 0); // block 2 now reads block 1's slot too
        PatchU32(file, VdiHeader.BlocksAllocatedOffset, 4);
        await using (IImage image = await Open(file))
        {
            await image.ReadAsync(0, before);
            await Assert.ThrowsAsync<ImageCorruptException>(async () => await image.WriteAsync(2 * MiB, new byte[] { 1 }));
            await Assert.ThrowsAsync<ImageCorruptException>(async () => await image.WriteAsync(MiB, new byte[] { 1 }));
            Assert.Equal(1, await Corruptions(image));
            Assert.Equal(1, (await ((ICheckable)image).CheckAsync(CheckRepair.All)).CorruptionsFixed);
            await image.WriteAsync(2 * MiB, new byte[] { 1 });
            before[2 * MiB] = 1;
        }

        await using IImage reopened = await Open(file);
        byte[] after = new byte[5 * MiB];
        await reopened.ReadAsync(0, after);
        Assert.Equal(before, after);
        Assert.Equal(0, await Corruptions(reopened));
        Assert.Equal(4u, Header(file).BlocksAllocated);
    }

    [Fact]
    public async Task A_truncated_file_fails_reads_of_lost_blocks_and_the_repair_keeps_what_is_left()
    {
        var file = await Written();
        VdiHeader header = Header(file);
        byte[] expected = new byte[5 * MiB];
        await using (IImage image = await Open(file))
        {
            await image.ReadAsync(0, expected);
        }

        file.SetLength(header.DataOffsetBytes + MiB + 1000); // slot 1 keeps 1000 bytes, slot 2 is gone
        expected.AsSpan(1000, 4096 - 1000).Clear();
        expected.AsSpan(4 * MiB, 4096).Clear();
        await using IImage truncated = await Open(file);
        await Assert.ThrowsAsync<ImageCorruptException>(async () => await truncated.ReadAsync(4 * MiB, new byte[1]));
        Assert.Equal(2, await Corruptions(truncated)); // two blocks past the end
        await ((ICheckable)truncated).CheckAsync(CheckRepair.All);
        Assert.Equal(0, await Corruptions(truncated));
        byte[] back = new byte[5 * MiB];
        await truncated.ReadAsync(0, back);
        Assert.Equal(expected, back);
    }

    [Fact]
    public async Task Slots_with_gaps_are_made_dense_so_new_blocks_cannot_land_on_used_ones()
    {
        var file = await Written();
        SetEntry(file, 4, 4); // slot 2 moves to slot 4: slots 0, 1, 4 and a count of 3 would next allocate slot 3, then 4
        VdiHeader header = Header(file);
        byte[] moved = new byte[MiB];
        await file.ReadZeroFilledAsync(header.DataOffsetBytes + (2L * MiB), moved);
        await file.WriteAsync(header.DataOffsetBytes + (4L * MiB), moved);
        await using IImage image = await Open(file);
        byte[] before = new byte[5 * MiB];
        await image.ReadAsync(0, before);
        await ((ICheckable)image).CheckAsync(CheckRepair.All);
        Assert.Equal(2u, Entry(file, 4));
        await image.WriteAsync(2 * MiB, new byte[] { 3 });
        await image.WriteAsync(3 * MiB, new byte[] { 4 });
        before[2 * MiB] = 3;
        before[3 * MiB] = 4;
        byte[] after = new byte[5 * MiB];
        await image.ReadAsync(0, after);
        Assert.Equal(before, after);
        Assert.Equal(0, await Corruptions(image));
    }

    [Property(MaxTest = 200)]
    public bool Corrupted_metadata_gives_typed_errors_only(int[] edits)
    {
        byte[] image = ReadAll(Written().GetAwaiter().GetResult());
        var random = new Random(edits.Length);
        foreach (int edit in edits.Take(12))
        {
            // Most edits hit the header fields and the block map.
            int offset = edit % 4 == 0 ? VdiHeader.BlockMapOffsetOffset + ((edit >>> 2) % 0x60) : (int)((uint)edit % 1024);
            image[offset] = (byte)random.Next(256);
        }

        try
        {
            Exercise(image).GetAwaiter().GetResult();
            return true;
        }
        catch (ImgToolException)
        {
            return true;
        }
    }

    private static async Task Exercise(byte[] bytes)
    {
        var file = new MemoryHostFile("fuzz.vdi");
        await file.WriteAsync(0, bytes);
        await using IImage image = await Open(file);
        byte[] buffer = new byte[Math.Min(image.SizeBytes, 6 * MiB)];
        await image.ReadAsync(0, buffer);
        for (long offset = 0, steps = 0; offset < image.SizeBytes && steps < 64; steps++)
        {
            BlockStatus status = await image.GetStatusAsync(offset, image.SizeBytes - offset);
            if (status.LengthBytes <= 0)
            {
                throw new InvalidOperationException("empty status extent");
            }

            offset += status.LengthBytes;
        }

        await ((ICheckable)image).CheckAsync(CheckRepair.All);
        if (image.SizeBytes > 0)
        {
            await image.WriteAsync(0, new byte[(int)Math.Min(4096, image.SizeBytes)]);
            Assert.Equal(0, await Corruptions(image));
        }
    }
}

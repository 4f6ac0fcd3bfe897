using FsCheck.Xunit;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Formats.Vhd;
using static ImgTool.Formats.Tests.Vhd.VhdTestSupport;

namespace ImgTool.Formats.Tests.Vhd;

/// <summary>Damaged images: whatever bytes of the metadata change, open, read, status and check either work or throw a typed error.</summary>
public sealed class VhdFuzzTests
{
    [Property(MaxTest = 200)]
    public bool Corrupted_metadata_gives_typed_errors_only(int[] edits, bool differencing)
    {
        byte[] image = Template(differencing).GetAwaiter().GetResult();
        var random = new Random(edits.Length);
        foreach (int edit in edits.Take(12))
        {
            // Most edits hit the metadata (footer, header, locators, BAT); some hit the end footer.
            int offset = edit % 3 == 0 ? image.Length - 512 + ((edit >>> 2) % 512) : (int)((uint)edit % 4096);
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
        var file = new MemoryHostFile("fuzz.vhd");
        await file.WriteAsync(0, bytes);
        await using IImage image = await VhdFormat.Instance.OpenAsync(file, NoBacking);
        long length = Math.Min(image.SizeBytes, 5 * MiB);
        byte[] buffer = new byte[length];
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

        await ((ICheckable)image).CheckAsync(CheckRepair.None);
        if (image.SizeBytes > 0)
        {
            await image.WriteAsync(0, new byte[4096].AsMemory(0, (int)Math.Min(4096, image.SizeBytes)));
        }
    }

    private static async Task<byte[]> Template(bool differencing)
    {
        MemoryHostFile file = await CreateInMemory(6 * MiB, "force_size=on");
        await using (IImage image = await Open(file))
        {
            await image.WriteAsync(MiB, Pattern(8192, 2));
            await image.WriteAsync(4 * MiB + 512, Pattern(1000, 3));
        }

        byte[] bytes = ReadAll(file);
        if (differencing)
        {
            // Turn it into a differencing disk whose parent cannot be found: only the open without a chain reads it.
            VhdFooter footer = VhdFooter.Read(bytes, null) with { DiskType = VhdDiskType.Differencing };
            footer.Write(bytes);
            footer.Write(bytes.AsSpan(bytes.Length - 512));
            Span<byte> headerBytes = bytes.AsSpan(VhdFooter.SizeBytes, VhdDynamicHeader.SizeBytes);
            (VhdDynamicHeader.Read(headerBytes, null) with { ParentUnicodeName = "missing-parent.vhd" }).Write(headerBytes);
        }

        return bytes;
    }
}

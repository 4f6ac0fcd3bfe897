using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Formats.Tests.Bochs;
using ImgTool.Formats.Tests.Cloop;
using ImgTool.Formats.Tests.Dmg;
using ImgTool.Formats.Tests.Parallels;
using static ImgTool.Formats.Tests.ReadOnly.ReadOnlyTestSupport;

namespace ImgTool.Formats.Tests.ReadOnly;

/// <summary>
/// Damaged images of every read-only format: whatever metadata bytes change, open, read, block status and check
/// either work or throw one of our typed errors (never another exception, a hang or a huge allocation).
/// </summary>
public sealed class ReadOnlyFuzzTests : IClassFixture<ReadOnlyFuzzTests.Templates>
{
    private readonly Templates _templates;

    public ReadOnlyFuzzTests(Templates templates) => _templates = templates;

    public static TheoryData<string> TemplateNames => new() { "qcow", "qcow-compressed", "parallels", "bochs", "cloop", "dmg-plist", "dmg-rsrc" };

    [Theory]
    [MemberData(nameof(TemplateNames))]
    public async Task Corrupted_metadata_gives_typed_errors_only(string template)
    {
        (byte[] original, FormatDriver driver, int metadataBytes) = _templates.Get(template);
        var random = new Random(template.GetHashCode(StringComparison.Ordinal) & 0xffff);
        for (int round = 0; round < 200; round++)
        {
            byte[] image = (byte[])original.Clone();
            int edits = 1 + random.Next(8);
            for (int i = 0; i < edits; i++)
            {
                // Most edits hit the metadata at the start; the rest the end (DMG's plist and trailer), or anywhere.
                int offset = random.Next(3) switch
                {
                    0 => image.Length - 1 - random.Next(Math.Min(image.Length, 4096)),
                    1 => random.Next(image.Length),
                    _ => random.Next(Math.Min(image.Length, metadataBytes)),
                };
                image[offset] = random.Next(4) == 0 ? (byte)0xff : (byte)random.Next(256);
            }

            try
            {
                await ExerciseAsync(driver, image);
            }
            catch (ImgToolException e)
            {
                Assert.DoesNotContain('\n', e.Message);
            }
        }
    }

    private static async Task ExerciseAsync(FormatDriver driver, byte[] bytes)
    {
        var file = new MemoryHostFile("fuzz.img");
        await file.WriteAsync(0, bytes);
        await using IImage image = await driver.OpenAsync(file, new ImageOpenContext(ReadOnly: true, OpenBackingAsync: null));
        byte[] buffer = new byte[(int)Math.Min(image.SizeBytes, 2 * MiB)];
        await image.ReadAsync(0, buffer);
        if (image.SizeBytes > buffer.Length)
        {
            await image.ReadAsync(image.SizeBytes - 4096, new byte[4096]);
        }

        for (long offset = 0, steps = 0; offset < image.SizeBytes && steps < 64; steps++)
        {
            BlockStatus status = await image.GetStatusAsync(offset, image.SizeBytes - offset);
            Assert.InRange(status.LengthBytes, 1, image.SizeBytes - offset);
            offset += status.LengthBytes;
        }

        if (image is ICheckable checkable)
        {
            await checkable.CheckAsync(CheckRepair.None);
        }
    }

    /// <summary>One valid image per format, made once: by qemu-img for qcow and parallels, byte by byte for the rest.</summary>
    public sealed class Templates : IDisposable
    {
        private readonly TempDir _dir = new();
        private readonly Dictionary<string, (byte[] Bytes, FormatDriver Driver, int MetadataBytes)> _images = [];

        public Templates()
        {
            Make().GetAwaiter().GetResult();
        }

        public (byte[] Bytes, FormatDriver Driver, int MetadataBytes) Get(string name) => _images[name];

        public void Dispose() => _dir.Dispose();

        private async Task Make()
        {
            string raw = _dir.File("src.raw");
            RawFile(raw, 2 * MiB, (0, 100_000), (MiB + 5000, 70_000));
            string qcow = _dir.File("q.qcow");
            await QemuAsync("convert", "-O", "qcow", raw, qcow);
            _images["qcow"] = (await File.ReadAllBytesAsync(qcow), ImgTool.Formats.QcowV1.QcowV1Format.Instance, 8192);
            string compressed = _dir.File("c.qcow");
            _ = await ExternalTool.RunAsync("qemu-img", "convert", "-c", "-O", "qcow", raw, compressed);
            _images["qcow-compressed"] = (await File.ReadAllBytesAsync(compressed), ImgTool.Formats.QcowV1.QcowV1Format.Instance, 8192);

            string parallels = _dir.File("p.hdd");
            await ParallelsTests.BuildAsync(parallels, extended: true, diskClusters: 16, [(0, 1), (3, 2)], withBitmap: true);
            _images["parallels"] = (await File.ReadAllBytesAsync(parallels), ImgTool.Formats.Parallels.ParallelsFormat.Instance, 1024);

            string bochs = _dir.File("b.bochs");
            await BochsTests.BuildAsync(bochs, ImgTool.Formats.Bochs.BochsHeader.Version2);
            _images["bochs"] = (await File.ReadAllBytesAsync(bochs), ImgTool.Formats.Bochs.BochsFormat.Instance, 1024);

            string cloop = _dir.File("c.cloop");
            await CloopTests.BuildAsync(cloop, 3);
            _images["cloop"] = (await File.ReadAllBytesAsync(cloop), ImgTool.Formats.Cloop.CloopFormat.Instance, 256);

            foreach (bool fork in (bool[])[false, true])
            {
                string dmg = _dir.File($"d{fork}.dmg");
                (List<DmgTests.Chunk> chunks, byte[] disk) = DmgTests.Standard(withBzip2: true);
                await DmgTests.WriteAsync(dmg, chunks, disk.Length / 512, fork);
                _images[fork ? "dmg-rsrc" : "dmg-plist"] = (await File.ReadAllBytesAsync(dmg), ImgTool.Formats.Dmg.DmgFormat.Instance, 4096);
            }
        }
    }
}

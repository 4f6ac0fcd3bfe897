using System.Text.RegularExpressions;
using ImgTool.Block.Devices;
using ImgTool.Formats;
using ImgTool.Machine;

namespace ImgTool.Cli.Tests.Boot;

/// <summary>Boots an image in-process with translation on or off, or in lockstep (issue 11's determinism and correctness tests).</summary>
internal static class TranslationBoot
{
    private const string Firmware = "/usr/share/seabios/bios.bin";

    public static async Task<BootReport> BootAsync(string image, bool translate, long maxInstructions, params string[] expect)
    {
        await using IImage disk = await new ImageOpener(FormatRegistry.Default).OpenAsync(image, new ImageOpenRequest("raw", ReadOnly: true));
        var overlay = new CopyOnWriteOverlay(disk);
        return BootRunner.Run(overlay, Settings(maxInstructions, expect) with { Translate = translate });
    }

    public static async Task<LockstepReport> LockstepAsync(string image, long maxInstructions, params string[] expect)
    {
        await using IImage disk = await new ImageOpener(FormatRegistry.Default).OpenAsync(image, new ImageOpenRequest("raw", ReadOnly: true));
        return Lockstep.Run(disk, Settings(maxInstructions, expect), maxInstructions);
    }

    private static BootSettings Settings(long maxInstructions, string[] expect) => new(
        File.ReadAllBytes(Firmware), 256u << 20, expect.Select(e => new Regex(Regex.Escape(e))).ToArray(), maxInstructions, TimeSpan.FromHours(1));
}

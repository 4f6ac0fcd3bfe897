namespace ImgTool.Cli.Tests.Boot;

/// <summary>
/// Issue 11: translated code retires instructions exactly as the interpreter (the same count at the marker, the
/// same output), and the lockstep harness finds no divergence over SeaBIOS and SYSLINUX.
/// </summary>
public sealed class TranslationTests : IDisposable
{
    private const long Budget = 200_000_000;
    private readonly string _directory = Directory.CreateTempSubdirectory("imgtool-translation-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Syslinux_boot_retires_the_same_instructions_with_and_without_translation()
    {
        string image = await SyslinuxBootTests.MakeFixtureAsync(_directory);

        var interpreted = await TranslationBoot.BootAsync(image, translate: false, Budget, "bootloader reached");
        var translated = await TranslationBoot.BootAsync(image, translate: true, Budget, "bootloader reached");

        Assert.True(interpreted.Success, interpreted.Diagnosis);
        Assert.True(translated.Success, translated.Diagnosis);
        Assert.Equal(interpreted.Instructions, translated.Instructions);
        Assert.Equal(interpreted.VirtualSeconds, translated.VirtualSeconds);
        Assert.Equal(interpreted.Serial, translated.Serial);
        Assert.Null(interpreted.Translation);
        Assert.NotNull(translated.Translation);
        Assert.True(translated.Translation.InstructionsTranslated > 0, "nothing ran translated");
    }

    [Fact]
    public async Task Lockstep_over_seabios_and_syslinux_finds_no_divergence()
    {
        string image = await SyslinuxBootTests.MakeFixtureAsync(_directory);

        var report = await TranslationBoot.LockstepAsync(image, Budget, "bootloader reached");

        Assert.True(report.Divergence is null, report.Divergence);
        Assert.Contains("bootloader reached", report.Serial, StringComparison.Ordinal);
        Assert.True(report.TranslatedBlocksCompared > report.BlocksCompared / 4,
            $"only {report.TranslatedBlocksCompared} of {report.BlocksCompared} blocks ran translated");
    }
}

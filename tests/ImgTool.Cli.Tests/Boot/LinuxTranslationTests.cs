namespace ImgTool.Cli.Tests.Boot;

/// <summary>
/// Issue 11 on the Linux fixture: the boot to "Run /init" retires the same instructions, with the same output,
/// translated and interpreted; and the lockstep harness agrees over the first 500 M instructions (SeaBIOS,
/// SYSLINUX, the kernel's decompression and early start-up).
/// </summary>
[Trait("Category", "LinuxBoot")]
[Collection(LinuxFixtureCollection.Name)]
public sealed class LinuxTranslationTests(LinuxFixture fixture)
{
    private const long Budget = 12_000_000_000;
    private const long LockstepInstructions = 500_000_000;

    [Fact]
    public async Task Linux_boot_to_init_retires_the_same_instructions_with_and_without_translation()
    {
        LinuxFixtureImage image = await fixture.GetAsync(LinuxFixture.Syslinux);

        var interpreted = await TranslationBoot.BootAsync(image.Path, translate: false, Budget, "Run /init");
        var translated = await TranslationBoot.BootAsync(image.Path, translate: true, Budget, "Run /init");

        Assert.True(interpreted.Success, interpreted.Diagnosis);
        Assert.True(translated.Success, translated.Diagnosis);
        Assert.Equal(interpreted.Instructions, translated.Instructions);
        Assert.Equal(interpreted.Serial, translated.Serial);
        Assert.True(translated.Translation!.InstructionsTranslated > translated.Instructions / 2, "less than half the boot ran translated");
    }

    [Fact]
    public async Task Lockstep_over_the_first_500M_instructions_of_the_linux_boot_finds_no_divergence()
    {
        LinuxFixtureImage image = await fixture.GetAsync(LinuxFixture.Syslinux);

        var report = await TranslationBoot.LockstepAsync(image.Path, LockstepInstructions);

        Assert.True(report.Divergence is null, report.Divergence);
        Assert.Equal(LockstepInstructions, report.Instructions);
    }
}

namespace ImgTool.Cli.Tests.Boot;

/// <summary>
/// With CR0.NE clear (as at power-on, and for DOS-era guests) an x87 error goes out on FERR# to IRQ 13, as on
/// every PC since the AT, not as #MF: fixtures/bootsector/ferr-irq13.asm divides by zero with the exception
/// unmasked, and its IRQ 13 handler, which clears the error through port 0xF0, prints before the code after
/// the waiting instruction does.
/// </summary>
public sealed class CoprocessorErrorTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("imgtool-ferr-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task An_x87_error_with_cr0_ne_clear_raises_irq13_and_the_instruction_goes_on()
    {
        byte[] image = new byte[1 << 20];
        BootSectors.Assemble("ferr-irq13.asm", _directory).CopyTo(image, 0);
        string path = Path.Combine(_directory, "ferr.img");
        await File.WriteAllBytesAsync(path, image);
        string log = Path.Combine(_directory, "serial.log");

        var result = await Tools.Imgtool("boot", "-f", "raw", path, "--expect", "done", "--timeout", "120s", "--serial-log", log);

        Assert.True(result.ExitCode == 0, result.ToString());
        string serial = await File.ReadAllTextAsync(log);
        Assert.True(serial.Contains("irq13\r\ndone\r\n", StringComparison.Ordinal), serial);
    }
}

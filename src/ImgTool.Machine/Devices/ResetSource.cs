namespace ImgTool.Machine.Devices;

/// <summary>Which of a PC's reset paths the guest took (each ends a run with its own diagnosis).</summary>
internal enum ResetSource
{
    /// <summary>The i8042 pulsed its CPU reset output (command 0xFE, or 0xD1 with bit 0 clear): Linux's reboot=kbd, its default without ACPI.</summary>
    KeyboardController,

    /// <summary>The PIIX3 reset control register at 0xCF9 (bit 2 rising): Linux's reboot=pci.</summary>
    ResetControlRegister,

    /// <summary>Port 0x92 bit 0 rising (fast reset).</summary>
    SystemControlPortA,
}

internal static class ResetSources
{
    public static string Describe(ResetSource source) => source switch
    {
        ResetSource.KeyboardController => "the i8042 keyboard controller (pulse of its reset line)",
        ResetSource.ResetControlRegister => "the PIIX3 reset control register (port 0xCF9)",
        _ => "system control port A (port 0x92 bit 0)",
    };
}

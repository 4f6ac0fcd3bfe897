namespace ImgTool.Machine.Devices;

/// <summary>
/// What a PC has at the well-known I/O ports (emulated here or not), so that traces and diagnoses say
/// "primary IDE status" rather than only "0x01F7". Sources: the PC/AT technical reference, the PIIX3
/// datasheet, SeaBIOS's and QEMU's port lists (fw_cfg, debug console).
/// </summary>
internal static class PortNames
{
    public static string? Describe(ushort port) => port switch
    {
        <= 0x0F => "DMA controller 1",
        0x20 or 0x21 => "PIC master",
        >= 0x40 and <= 0x43 => "PIT",
        0x60 => "i8042 data",
        0x61 => "system control port B",
        0x64 => "i8042 status/command",
        0x70 or 0x71 => "CMOS/RTC",
        >= 0x80 and <= 0x8F => port == 0x80 ? "POST code" : "DMA page registers",
        0x92 => "system control port A (fast A20)",
        0xA0 or 0xA1 => "PIC slave",
        0xB2 or 0xB3 => "APM/SMI control",
        >= 0xC0 and <= 0xDF => "DMA controller 2",
        0xED => "delay port",
        >= 0xF0 and <= 0xFF => "math coprocessor",
        >= 0x170 and <= 0x177 => "secondary IDE",
        >= 0x1F0 and <= 0x1F7 => port == 0x1F7 ? "primary IDE status/command" : "primary IDE",
        >= 0x278 and <= 0x27A => "LPT2",
        >= 0x2E8 and <= 0x2EF => "COM4",
        >= 0x2F8 and <= 0x2FF => "COM2",
        0x376 => "secondary IDE control",
        >= 0x378 and <= 0x37A => "LPT1",
        >= 0x3B0 and <= 0x3DF => "VGA",
        >= 0x3E8 and <= 0x3EF => "COM3",
        >= 0x3F0 and <= 0x3F5 or 0x3F7 => "floppy controller",
        0x3F6 => "primary IDE control",
        >= 0x3F8 and <= 0x3FF => "COM1",
        0x402 => "debug console",
        0x4D0 or 0x4D1 => "ELCR",
        0x510 or 0x511 => "fw_cfg",
        0xCF9 => "reset control",
        >= 0xCF8 and <= 0xCFB => "PCI config address",
        >= 0xCFC and <= 0xCFF => "PCI config data",
        _ => null,
    };

    /// <summary>"0x01F7 (primary IDE status/command)", or just the number.</summary>
    public static string Format(ushort port) =>
        Describe(port) is { } name ? $"0x{port:X4} ({name})" : $"0x{port:X4}";
}

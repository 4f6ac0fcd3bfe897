using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Devices;

/// <summary>
/// Address line 20: enabled when either the i8042 output port's A20 bit or port 0x92's fast A20 bit
/// is set (the PIIX3 ORs its A20GATE input with FAST_A20; datasheet 4.7.1 "Port 92h").
/// </summary>
internal sealed class A20Gate
{
    private const uint AllAddressLines = 0xFFFF_FFFF, WithoutLine20 = ~(1u << 20);

    private readonly PhysicalMemory _memory;
    private bool _keyboardController = true; // the output port resets to A20 on (QEMU and SeaBIOS expect it)
    private bool _fastA20;

    public A20Gate(PhysicalMemory memory)
    {
        _memory = memory;
        Apply();
    }

    public bool Enabled => _keyboardController || _fastA20;

    public bool KeyboardController
    {
        get => _keyboardController;
        set
        {
            _keyboardController = value;
            Apply();
        }
    }

    public bool FastA20
    {
        get => _fastA20;
        set
        {
            _fastA20 = value;
            Apply();
        }
    }

    private void Apply() => _memory.A20Mask = Enabled ? AllAddressLines : WithoutLine20;
}

using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// The PIIX3 edge/level control registers ELCR1 and ELCR2 at 0x4D0/0x4D1 (PIIX3 datasheet 4.1.5.10):
/// one bit per IRQ, 1 = level-triggered (shared, active-low PCI interrupts), which Linux sets through
/// elcr_set_level_irq when it routes a PCI IRQ. IRQ 0, 1, 2, 8 and 13 are always edge-triggered.
/// </summary>
internal sealed class Elcr : IPortDevice
{
    public const int PortCount = 2;
    private const byte Elcr1Writable = 0xF8, Elcr2Writable = 0xDE;

    private readonly Pic8259Pair _pic;

    public Elcr(Pic8259Pair pic) => _pic = pic;

    public uint Read(ushort offset, int sizeBytes)
    {
        uint value = 0;
        for (int i = 0; i < sizeBytes && offset + i < PortCount; i++)
        {
            value |= (uint)Chip(offset + i).LevelLines << (8 * i);
        }

        return value;
    }

    public void Write(ushort offset, int sizeBytes, uint value)
    {
        for (int i = 0; i < sizeBytes && offset + i < PortCount; i++)
        {
            int register = offset + i;
            Chip(register).SetLevelLines((int)(value >> (8 * i)) & (register == 0 ? Elcr1Writable : Elcr2Writable));
        }
    }

    private Pic8259 Chip(int register) => register == 0 ? _pic.Master : _pic.Slave;
}

namespace ImgTool.Machine.Devices;

/// <summary>
/// The CMOS RAM bytes a PC BIOS reads beyond the clock (IBM PC/AT technical reference, CMOS map; the
/// values QEMU's pc machine stores and SeaBIOS's code reads).
/// </summary>
internal static class CmosLayout
{
    public const int ShutdownStatus = 0x0F, FloppyTypes = 0x10, Equipment = 0x14, BaseMemoryLow = 0x15, BaseMemoryHigh = 0x16,
        ExtendedMemoryLow = 0x17, ExtendedMemoryHigh = 0x18, ExtendedMemory2Low = 0x30, ExtendedMemory2High = 0x31,
        MemoryAbove16MLow = 0x34, MemoryAbove16MHigh = 0x35, BootOrderLow = 0x38, BootOrderHigh = 0x3D, CpuCountMinusOne = 0x5F;

    private const uint BaseMemoryKiB = 640, OneMiB = 1 << 20, SixteenMiB = 16 << 20, KiB = 1024;
    private const int Above16MShift = 16; // 64 KiB units
    private const uint MaxExtendedKiB = 0xFFFF;
    private const byte EquipmentFpuAndDisplay = 0x06, BootHardDiskFirst = 0x02;

    public static void FillFirmwareBytes(byte[] ram, uint ramSizeBytes)
    {
        ram[FloppyTypes] = 0x00; // no floppy drives
        ram[Equipment] = EquipmentFpuAndDisplay;
        ram[BaseMemoryLow] = unchecked((byte)BaseMemoryKiB);
        ram[BaseMemoryHigh] = (byte)(BaseMemoryKiB >> 8);
        uint extendedKiB = Math.Min(MaxExtendedKiB, ramSizeBytes > OneMiB ? (ramSizeBytes - OneMiB) / KiB : 0);
        ram[ExtendedMemoryLow] = ram[ExtendedMemory2Low] = (byte)extendedKiB;
        ram[ExtendedMemoryHigh] = ram[ExtendedMemory2High] = (byte)(extendedKiB >> 8);
        uint above16M = ramSizeBytes > SixteenMiB ? (ramSizeBytes - SixteenMiB) >> Above16MShift : 0;
        ram[MemoryAbove16MLow] = (byte)above16M;
        ram[MemoryAbove16MHigh] = (byte)(above16M >> 8);
        ram[BootOrderHigh] = BootHardDiskFirst; // QEMU's encoding, SeaBIOS reads 0x3D/0x38
        ram[BootOrderLow] = 0x00;
        ram[CpuCountMinusOne] = 0x00;
    }
}

using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Pci;

/// <summary>
/// The i440FX host bridge (8086:1237) with QEMU's subsystem ID 1af4:1100, by which SeaBIOS knows it
/// runs on a QEMU-like machine, and the PAM registers 0x59-0x5F (i440FX datasheet 3.2.18) that route
/// reads and writes of 0xC0000-0xFFFFF to shadow RAM or to the BIOS ROM.
/// </summary>
internal sealed class I440fxHostBridge : PciFunction
{
    public const ushort IntelVendorId = 0x8086, I440fxDeviceId = 0x1237;
    public const ushort QemuSubsystemVendorId = 0x1AF4, QemuSubsystemId = 0x1100;
    private const uint HostBridgeClass = 0x060000;
    private const byte I440fxRevision = 0x02;

    private const int Pam0 = 0x59;
    private const int PamRegisterCount = 7;
    private const uint BiosBlockStart = 0xF0000, ExpansionStart = 0xC0000;
    private const uint PamBlockBytes = 0x4000;
    private const int BiosBlocks = 4;
    private const int NibbleBits = 4, LowNibble = 0xF;

    // PAM nibble bits (3.2.18): bit 0 routes reads to DRAM, bit 1 routes writes to DRAM.
    private const int ReadEnable = 1, WriteEnable = 2;

    private readonly PhysicalMemory _memory;
    private readonly Action _codeMappingChanged;

    public I440fxHostBridge(PhysicalMemory memory, Action codeMappingChanged)
        : base(IntelVendorId, I440fxDeviceId, HostBridgeClass, I440fxRevision, QemuSubsystemVendorId, QemuSubsystemId)
    {
        _memory = memory;
        _codeMappingChanged = codeMappingChanged;
        ApplyPam();
    }

    public override void WriteConfig(int offset, int sizeBytes, uint value)
    {
        base.WriteConfig(offset, sizeBytes, value);
        if (offset < Pam0 + PamRegisterCount && offset + sizeBytes > Pam0)
        {
            ApplyPam();
            _codeMappingChanged();
        }
    }

    private void ApplyPam()
    {
        // PAM0 high nibble: 0xF0000-0xFFFFF; PAM1-6, low then high nibble: 16 KiB blocks from 0xC0000.
        for (uint block = 0; block < BiosBlocks; block++)
        {
            Route(BiosBlockStart + block * PamBlockBytes, Config[Pam0] >> NibbleBits);
        }

        for (int n = 1; n < PamRegisterCount; n++)
        {
            uint start = ExpansionStart + (uint)(n - 1) * 2 * PamBlockBytes;
            Route(start, Config[Pam0 + n] & LowNibble);
            Route(start + PamBlockBytes, Config[Pam0 + n] >> NibbleBits);
        }
    }

    private void Route(uint address, int nibble) =>
        _memory.RouteLegacyBlock(address, readToRegion: (nibble & ReadEnable) == 0, writeToRegion: (nibble & WriteEnable) == 0);
}

using System.Buffers.Binary;
using ImgTool.Machine.Bus;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Devices;

/// <summary>A PCI function's 256-byte configuration space; subclasses react to writes.</summary>
internal class PciFunction
{
    // Configuration header offsets (PCI Local Bus spec 3.0, 6.1).
    public const int VendorId = 0x00, DeviceId = 0x02, Command = 0x04, Status = 0x06, RevisionId = 0x08,
        ClassCode = 0x09, HeaderType = 0x0E, Bar0 = 0x10, SubsystemVendorId = 0x2C, SubsystemId = 0x2E,
        InterruptLine = 0x3C, InterruptPin = 0x3D;

    public readonly byte[] Config = new byte[256];

    public PciFunction(ushort vendor, ushort device, uint classCode, byte revision, ushort subsystemVendor, ushort subsystem)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(Config.AsSpan(VendorId), vendor);
        BinaryPrimitives.WriteUInt16LittleEndian(Config.AsSpan(DeviceId), device);
        Config[RevisionId] = revision;
        Config[ClassCode] = (byte)classCode;
        Config[ClassCode + 1] = (byte)(classCode >> 8);
        Config[ClassCode + 2] = (byte)(classCode >> 16);
        BinaryPrimitives.WriteUInt16LittleEndian(Config.AsSpan(SubsystemVendorId), subsystemVendor);
        BinaryPrimitives.WriteUInt16LittleEndian(Config.AsSpan(SubsystemId), subsystem);
    }

    public virtual uint ReadConfig(int offset, int sizeBytes)
    {
        uint value = 0;
        for (int i = 0; i < sizeBytes && offset + i < 256; i++)
        {
            value |= (uint)Config[offset + i] << (8 * i);
        }

        return value;
    }

    public virtual void WriteConfig(int offset, int sizeBytes, uint value)
    {
        for (int i = 0; i < sizeBytes && offset + i < 256; i++)
        {
            int at = offset + i;
            // Identity, class, header type and (in this base class, which has none) BARs and the
            // expansion ROM BAR are read-only: a BAR that keeps all-ones would look like a 4 KiB BAR.
            if (at is < 0x04 or (>= 0x08 and < 0x0C) or 0x0E or (>= 0x10 and < 0x28) or (>= 0x2C and < 0x34) or 0x3D)
            {
                continue;
            }

            Config[at] = (byte)(value >> (8 * i));
        }
    }
}

/// <summary>
/// PCI configuration mechanism #1 (0xCF8 address, 0xCFC-0xCFF data) on bus 0 (PCI spec 3.0, 3.2.2.3.2).
/// </summary>
internal sealed class PciHost : IPortDevice
{
    private readonly PciFunction?[] _functions = new PciFunction?[256];
    private uint _address;

    public void Add(int device, int function, PciFunction pci) => _functions[(device << 3) | function] = pci;

    // Offsets within the 0xCF8-0xCFF range: the address register, then the data window.
    private const ushort AddressOffset = 0, DataOffset = 4;

    public uint Read(ushort port, int sizeBytes)
    {
        if (port is >= AddressOffset and < DataOffset)
        {
            return _address >> (8 * (port - AddressOffset));
        }

        var target = Target(out int offset);
        if (target is null)
        {
            return sizeBytes == 1 ? 0xFFu : sizeBytes == 2 ? 0xFFFFu : 0xFFFFFFFFu;
        }

        return target.ReadConfig(offset + (port - DataOffset), sizeBytes);
    }

    public void Write(ushort port, int sizeBytes, uint value)
    {
        if (port == AddressOffset && sizeBytes == 4)
        {
            _address = value;
            return;
        }

        if (port is >= AddressOffset and < DataOffset)
        {
            return;
        }

        Target(out int offset)?.WriteConfig(offset + (port - DataOffset), sizeBytes, value);
    }

    private PciFunction? Target(out int offset)
    {
        offset = (int)(_address & 0xFC);
        if ((_address & 0x80000000) == 0 || ((_address >> 16) & 0xFF) != 0)
        {
            return null;
        }

        return _functions[(_address >> 8) & 0xFF];
    }
}

/// <summary>
/// The i440FX host bridge (8086:1237) with QEMU's subsystem ID 1af4:1100, by which SeaBIOS knows it
/// runs on a QEMU-like machine, and the PAM registers 0x59-0x5F (i440FX datasheet 3.2.18) that route
/// reads and writes of 0xC0000-0xFFFFF to shadow RAM or to the BIOS ROM.
/// </summary>
internal sealed class I440fxHostBridge : PciFunction
{
    private const int Pam0 = 0x59;
    private readonly PhysicalMemory _memory;
    private readonly Action _codeMappingChanged;

    public I440fxHostBridge(PhysicalMemory memory, Action codeMappingChanged)
        : base(0x8086, 0x1237, 0x060000, 0x02, 0x1AF4, 0x1100)
    {
        _memory = memory;
        _codeMappingChanged = codeMappingChanged;
        ApplyPam();
    }

    public override void WriteConfig(int offset, int sizeBytes, uint value)
    {
        base.WriteConfig(offset, sizeBytes, value);
        if (offset <= Pam0 + 6 && offset + sizeBytes > Pam0)
        {
            ApplyPam();
            _codeMappingChanged();
        }
    }

    private void ApplyPam()
    {
        // PAM0 bits 4-7: 0xF0000-0xFFFFF; PAMn (n=1..6) low/high nibble: a 16 KiB block each from 0xC0000.
        for (uint block = 0; block < 4; block++)
        {
            Route(0xF0000 + block * 0x4000, Config[Pam0] >> 4);
        }

        for (int n = 1; n <= 6; n++)
        {
            uint start = 0xC0000 + (uint)(n - 1) * 0x8000;
            Route(start, Config[Pam0 + n] & 0xF);
            Route(start + 0x4000, Config[Pam0 + n] >> 4);
        }
    }

    // Nibble bit 0: reads from RAM; bit 1: writes to RAM.
    private void Route(uint address, int nibble) =>
        _memory.RouteLegacyBlock(address, readToRegion: (nibble & 1) == 0, writeToRegion: (nibble & 2) == 0);
}

/// <summary>The BIOS ROM (read-only): mapped at the top of 4 GiB and its last 128 KiB at 0xE0000.</summary>
internal sealed class RomRegion : IMemoryRegion
{
    private readonly byte[] _image;
    private readonly int _offset;

    public RomRegion(byte[] image, int offset)
    {
        _image = image;
        _offset = offset;
    }

    public uint Read(uint offsetBytes, int sizeBytes)
    {
        uint value = 0;
        for (int i = 0; i < sizeBytes; i++)
        {
            long at = _offset + offsetBytes + i;
            value |= (uint)(at < _image.Length ? _image[at] : 0xFF) << (8 * i);
        }

        return value;
    }

    public void Write(uint offsetBytes, int sizeBytes, uint value)
    {
        // ROM: writes are dropped.
    }
}

using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;

namespace ImgTool.Machine.Pci;

/// <summary>
/// PCI configuration mechanism #1 (PCI Local Bus spec 3.0, 3.2.2.3.2) on bus 0: the dword at 0xCF8
/// names enable, bus, device, function and register; 0xCFC-0xCFF carry the data of that dword.
/// A function that does not exist reads as all ones, which is how software finds the slot empty.
/// </summary>
internal sealed class PciHost : IPortDevice
{
    public const ushort ConfigAddressPort = 0xCF8;
    public const ushort ConfigDataPort = 0xCFC;
    public const int PortCount = 8;
    public const int DevicesPerBus = 32;
    public const int FunctionsPerDevice = 8;

    // CONFIG_ADDRESS fields (3.2.2.3.2).
    private const uint EnableBit = 0x8000_0000;
    private const int BusShift = 16, FunctionIndexShift = 8, DeviceShift = 3;
    private const uint BusMask = 0xFF, FunctionIndexMask = 0xFF, RegisterMask = 0xFC;

    private readonly PciFunction?[] _functions = new PciFunction?[DevicesPerBus * FunctionsPerDevice];
    private uint _address;

    public void Add(int device, int function, PciFunction pci)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)device, (uint)DevicesPerBus, nameof(device));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)function, (uint)FunctionsPerDevice, nameof(function));
        _functions[(device << DeviceShift) | function] = pci;
    }

    public PciFunction? Get(int device, int function) => _functions[(device << DeviceShift) | function];

    public uint Read(ushort port, int sizeBytes) => ReadRegister(port, sizeBytes);

    public void Write(ushort port, int sizeBytes, uint value) => WriteRegister(port, sizeBytes, value);

    /// <summary>A read at <paramref name="offset"/> from 0xCF8.</summary>
    public uint ReadRegister(int offset, int sizeBytes)
    {
        const int DataOffset = ConfigDataPort - ConfigAddressPort;
        if (offset < DataOffset)
        {
            return _address >> (8 * offset);
        }

        var target = Target(out int register);
        if (target is null)
        {
            return sizeBytes == 1 ? 0xFFu : sizeBytes == 2 ? 0xFFFFu : 0xFFFFFFFFu;
        }

        return target.ReadConfig(register + (offset - DataOffset), sizeBytes);
    }

    public void WriteRegister(int offset, int sizeBytes, uint value)
    {
        const int DataOffset = ConfigDataPort - ConfigAddressPort;
        if (offset < DataOffset)
        {
            // Only a dword write latches CONFIG_ADDRESS; byte writes to 0xCF9 belong to the reset control register.
            if (offset == 0 && sizeBytes == 4)
            {
                _address = value;
            }

            return;
        }

        Target(out int register)?.WriteConfig(register + (offset - DataOffset), sizeBytes, value);
    }

    private PciFunction? Target(out int register)
    {
        register = (int)(_address & RegisterMask);
        if ((_address & EnableBit) == 0 || ((_address >> BusShift) & BusMask) != 0)
        {
            return null;
        }

        return _functions[(_address >> FunctionIndexShift) & FunctionIndexMask];
    }
}

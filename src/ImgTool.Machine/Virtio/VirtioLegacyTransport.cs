using System.Numerics;
using ImgTool.Machine.Pci;

namespace ImgTool.Machine.Virtio;

/// <summary>
/// The legacy (virtio 0.9.5) PCI interface in an I/O BAR (virtio 1.1, 4.1.4.8): a fixed register
/// block without MSI-X, then the device configuration. Feature bits 0-31 only, queues placed by one
/// page frame number with the legacy layout, and a fixed queue size.
/// </summary>
internal sealed class VirtioLegacyTransport(VirtioDevice device) : IPciBarRegisters
{
    // Register offsets (4.1.4.8, "without MSI-X"): each after the one before.
    public const int DeviceFeatures = 0x00, DriverFeatures = DeviceFeatures + 4, QueueAddress = DriverFeatures + 4,
        QueueSize = QueueAddress + 4, QueueSelect = QueueSize + 2, QueueNotify = QueueSelect + 2,
        DeviceStatus = QueueNotify + 2, IsrStatus = DeviceStatus + 1, DeviceConfig = IsrStatus + 1;

    private ushort _queueSelect;

    /// <summary>Registers plus configuration, rounded up to a power of two as a BAR must be (QEMU sizes it so).</summary>
    public uint BarSizeBytes => BitOperations.RoundUpToPowerOf2((uint)(DeviceConfig + device.ConfigBytes));

    private SplitVirtqueue? SelectedQueue => _queueSelect < device.Queues.Count ? device.Queues[_queueSelect] : null;

    public uint Read(uint offsetBytes, int sizeBytes)
    {
        uint value = 0;
        for (int i = 0; i < sizeBytes; i++)
        {
            value |= (uint)ReadByte((int)offsetBytes + i) << (8 * i);
        }

        return value;
    }

    public void Write(uint offsetBytes, int sizeBytes, uint value)
    {
        int offset = (int)offsetBytes;
        if (offset >= DeviceConfig)
        {
            for (int i = 0; i < sizeBytes; i++)
            {
                device.WriteConfigByte(offset - DeviceConfig + i, (byte)(value >> (8 * i)));
            }

            return;
        }

        switch (offset)
        {
            case DriverFeatures:
                device.AcceptLegacyFeatures(value);
                break;
            case QueueAddress:
                SelectedQueue?.SetLegacyPageFrame(value);
                break;
            case QueueSelect:
                _queueSelect = (ushort)value;
                break;
            case QueueNotify:
                device.Notify((ushort)value);
                break;
            case DeviceStatus:
                device.WriteStatus((byte)value, modernDriverFeatures: null);
                break;
        }
    }

    private byte ReadByte(int offset)
    {
        if (offset >= DeviceConfig)
        {
            return device.ReadConfigByte(offset - DeviceConfig);
        }

        if (offset == IsrStatus)
        {
            return device.ReadIsrAndClear();
        }

        var (fieldStart, field) = offset switch
        {
            < DriverFeatures => (DeviceFeatures, (uint)device.OfferedFeatures),
            < QueueAddress => (DriverFeatures, (uint)device.NegotiatedFeatures),
            < QueueSize => (QueueAddress, (uint)((SelectedQueue?.DescriptorTable ?? 0) >> VirtqLayout.LegacyPfnShift)),
            < QueueSelect => (QueueSize, (uint)(SelectedQueue?.Size ?? 0)),
            < QueueNotify => (QueueSelect, _queueSelect),
            < DeviceStatus => (QueueNotify, 0u),
            _ => (DeviceStatus, device.Status),
        };
        return (byte)(field >> (8 * (offset - fieldStart)));
    }
}

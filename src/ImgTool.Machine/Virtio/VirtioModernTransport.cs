using ImgTool.Machine.Pci;

namespace ImgTool.Machine.Virtio;

/// <summary>
/// The virtio 1.0 PCI interface (virtio 1.1, 4.1.4) in one memory BAR laid out as QEMU lays it: a
/// 4 KiB page each for the common configuration, the ISR, the device configuration and the
/// notifications, which capabilities point at. Feature bits 0-63 through select registers, the
/// FEATURES_OK handshake, per-queue size/enable/addresses and queue_notify_off.
/// </summary>
internal sealed class VirtioModernTransport(VirtioDevice device) : IPciBarRegisters
{
    public const uint RegionBytes = 0x1000;
    public const uint CommonOffset = 0, IsrOffset = CommonOffset + RegionBytes, DeviceOffset = IsrOffset + RegionBytes,
        NotifyOffset = DeviceOffset + RegionBytes, BarSizeBytes = NotifyOffset + RegionBytes;

    /// <summary>A queue's notify address is queue_notify_off times this from the notify region (4.1.4.4).</summary>
    public const uint NotifyOffMultiplier = 4;

    // struct virtio_pci_common_cfg (4.1.4.3): each field after the one before.
    public const int DeviceFeatureSelect = 0x00, DeviceFeature = DeviceFeatureSelect + 4, DriverFeatureSelect = DeviceFeature + 4,
        DriverFeature = DriverFeatureSelect + 4, MsixConfig = DriverFeature + 4, NumQueues = MsixConfig + 2,
        DeviceStatus = NumQueues + 2, ConfigGeneration = DeviceStatus + 1, QueueSelect = ConfigGeneration + 1,
        QueueSize = QueueSelect + 2, QueueMsixVector = QueueSize + 2, QueueEnable = QueueMsixVector + 2,
        QueueNotifyOff = QueueEnable + 2, QueueDesc = QueueNotifyOff + 2, QueueDriver = QueueDesc + 8,
        QueueDevice = QueueDriver + 8, CommonCfgBytes = QueueDevice + 8;

    /// <summary>VIRTIO_MSI_NO_VECTOR: there is no MSI-X, so interrupts go through INTx and the ISR (4.1.5.3).</summary>
    public const ushort NoVector = 0xFFFF;

    private const int FeatureWordBits = 32;
    private const uint FeatureWords = 2;
    private const ulong Low32Mask = 0xFFFF_FFFF;
    private const int HighHalf = 4;

    private uint _deviceFeatureSelect;
    private uint _driverFeatureSelect;
    private ulong _driverFeatures;
    private ushort _queueSelect;

    private SplitVirtqueue? SelectedQueue => _queueSelect < device.Queues.Count ? device.Queues[_queueSelect] : null;

    public uint Read(uint offsetBytes, int sizeBytes)
    {
        if (offsetBytes >= NotifyOffset)
        {
            return 0;
        }

        if (offsetBytes >= DeviceOffset)
        {
            uint value = 0;
            for (int i = 0; i < sizeBytes; i++)
            {
                value |= (uint)device.ReadConfigByte((int)(offsetBytes - DeviceOffset) + i) << (8 * i);
            }

            return value;
        }

        if (offsetBytes >= IsrOffset)
        {
            return offsetBytes == IsrOffset ? device.ReadIsrAndClear() : 0u;
        }

        uint common = 0;
        for (int i = 0; i < sizeBytes; i++)
        {
            common |= (uint)ReadCommonByte((int)offsetBytes + i) << (8 * i);
        }

        return common;
    }

    public void Write(uint offsetBytes, int sizeBytes, uint value)
    {
        if (offsetBytes >= NotifyOffset)
        {
            // The queue is the one whose notify address this is (QEMU decodes the address, not the data).
            uint notifyOffset = offsetBytes - NotifyOffset;
            if (notifyOffset % NotifyOffMultiplier == 0)
            {
                device.Notify((int)(notifyOffset / NotifyOffMultiplier));
            }

            return;
        }

        if (offsetBytes >= DeviceOffset)
        {
            for (int i = 0; i < sizeBytes; i++)
            {
                device.WriteConfigByte((int)(offsetBytes - DeviceOffset) + i, (byte)(value >> (8 * i)));
            }

            return;
        }

        if (offsetBytes < CommonCfgBytes)
        {
            WriteCommon((int)offsetBytes, value);
        }
    }

    /// <summary>Device reset clears the transport's selectors and the features the driver staged.</summary>
    private void ResetTransport()
    {
        _deviceFeatureSelect = _driverFeatureSelect = 0;
        _driverFeatures = 0;
        _queueSelect = 0;
    }

    private void WriteCommon(int offset, uint value)
    {
        var queue = SelectedQueue;
        switch (offset)
        {
            case DeviceFeatureSelect:
                _deviceFeatureSelect = value;
                break;
            case DriverFeatureSelect:
                _driverFeatureSelect = value;
                break;
            case DriverFeature:
                // The driver may not change features once FEATURES_OK is set (2.2.2).
                if ((device.Status & VirtioStatus.FeaturesOk) == 0 && _driverFeatureSelect < FeatureWords)
                {
                    int shift = (int)_driverFeatureSelect * FeatureWordBits;
                    _driverFeatures = (_driverFeatures & ~(Low32Mask << shift)) | ((ulong)value << shift);
                }

                break;
            case DeviceStatus:
                if ((byte)value == 0)
                {
                    ResetTransport();
                }

                device.WriteStatus((byte)value, _driverFeatures);
                break;
            case QueueSelect:
                _queueSelect = (ushort)value;
                break;
            case QueueSize:
                queue?.TrySetSize((ushort)value);
                break;
            case QueueEnable:
                // Only 1 is meaningful in 1.0; disabling needs VIRTIO_F_RING_RESET, not offered.
                if (queue is not null && (ushort)value == 1)
                {
                    queue.Enabled = true;
                }

                break;
            case QueueDesc when queue is not null: queue.DescriptorTable = SetLow(queue.DescriptorTable, value); break;
            case QueueDesc + HighHalf when queue is not null: queue.DescriptorTable = SetHigh(queue.DescriptorTable, value); break;
            case QueueDriver when queue is not null: queue.DriverArea = SetLow(queue.DriverArea, value); break;
            case QueueDriver + HighHalf when queue is not null: queue.DriverArea = SetHigh(queue.DriverArea, value); break;
            case QueueDevice when queue is not null: queue.DeviceArea = SetLow(queue.DeviceArea, value); break;
            case QueueDevice + HighHalf when queue is not null: queue.DeviceArea = SetHigh(queue.DeviceArea, value); break;
        }
    }

    private byte ReadCommonByte(int offset)
    {
        var queue = SelectedQueue;
        var (fieldStart, field) = offset switch
        {
            < DeviceFeature => (DeviceFeatureSelect, (ulong)_deviceFeatureSelect),
            < DriverFeatureSelect => (DeviceFeature, FeatureWord(device.OfferedFeatures, _deviceFeatureSelect)),
            < DriverFeature => (DriverFeatureSelect, _driverFeatureSelect),
            < MsixConfig => (DriverFeature, FeatureWord(_driverFeatures, _driverFeatureSelect)),
            < NumQueues => (MsixConfig, NoVector),
            < DeviceStatus => (NumQueues, (ulong)device.Queues.Count),
            < ConfigGeneration => (DeviceStatus, device.Status),
            < QueueSelect => (ConfigGeneration, device.ConfigGeneration),
            < QueueSize => (QueueSelect, _queueSelect),
            // A queue that does not exist reads size 0 (4.1.4.3).
            < QueueMsixVector => (QueueSize, (ulong)(queue?.Size ?? 0)),
            < QueueEnable => (QueueMsixVector, NoVector),
            < QueueNotifyOff => (QueueEnable, queue?.Enabled == true ? 1ul : 0),
            // Each queue notifies at its own address: notify_off = its index.
            < QueueDesc => (QueueNotifyOff, _queueSelect),
            < QueueDriver => (QueueDesc, queue?.DescriptorTable ?? 0),
            < QueueDevice => (QueueDriver, queue?.DriverArea ?? 0),
            < CommonCfgBytes => (QueueDevice, queue?.DeviceArea ?? 0),
            _ => (offset, 0ul),
        };
        return (byte)(field >> (8 * (offset - fieldStart)));
    }

    private static ulong FeatureWord(ulong features, uint select) =>
        select < FeatureWords ? (features >> (int)(select * FeatureWordBits)) & Low32Mask : 0;

    private static ulong SetLow(ulong address, uint low) => (address & ~Low32Mask) | low;

    private static ulong SetHigh(ulong address, uint high) => (address & Low32Mask) | ((ulong)high << FeatureWordBits);
}

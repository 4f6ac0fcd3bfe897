namespace ImgTool.Machine.Virtio;

/// <summary>
/// What every virtio device has whatever its transport (virtio 1.1, 2): the feature bits, the
/// status byte and its handshake, the virtqueues, the ISR bits and the configuration generation.
/// A transport (legacy or modern PCI) turns register accesses into these calls; a device type
/// (block) supplies its features, its configuration bytes and what a queue notification does.
/// </summary>
internal abstract class VirtioDevice
{
    /// <summary>ISR status bits (4.1.4.5): bit 0 a used buffer, bit 1 a configuration change.</summary>
    public const byte IsrQueue = 1, IsrConfig = 2;

    private readonly SplitVirtqueue[] _queues;

    protected VirtioDevice(GuestRam ram, int queueCount, int queueSize)
    {
        Ram = ram;
        _queues = new SplitVirtqueue[queueCount];
        for (int i = 0; i < queueCount; i++)
        {
            _queues[i] = new SplitVirtqueue(ram, queueSize);
        }
    }

    /// <summary>The virtio device ID (5: 2 is a block device).</summary>
    public abstract ushort DeviceType { get; }

    /// <summary>The feature bits the device offers (0-63; VERSION_1 when a modern interface exists).</summary>
    public abstract ulong OfferedFeatures { get; }

    /// <summary>Bytes of device-specific configuration.</summary>
    public abstract int ConfigBytes { get; }

    public IReadOnlyList<SplitVirtqueue> Queues => _queues;

    /// <summary>The features the driver accepted (for the modern interface, once FEATURES_OK stuck).</summary>
    public ulong NegotiatedFeatures { get; private set; }

    public byte Status { get; private set; }

    public byte Isr { get; private set; }

    /// <summary>Changes whenever the device changes its configuration, so a driver re-reads it (4.1.4.3 config_generation).</summary>
    public byte ConfigGeneration { get; private set; }

    /// <summary>The driver broke a rule (a malformed chain, a ring outside RAM); queues stay idle until a reset.</summary>
    public bool Broken { get; private set; }

    /// <summary>What the driver did wrong when the device broke, for a diagnosis.</summary>
    public string? BrokenReason { get; private set; }

    /// <summary>The interrupt line's level (INTx# on PCI): high while any ISR bit is set.</summary>
    public Action<bool>? InterruptLevel { get; set; }

    public abstract byte ReadConfigByte(int offset);

    public abstract void WriteConfigByte(int offset, byte value);

    /// <summary>The legacy interface: the driver's features take effect as written, less those not offered.</summary>
    public void AcceptLegacyFeatures(uint driverFeatures)
    {
        NegotiatedFeatures = driverFeatures & OfferedFeatures;
        ApplyFeatures();
    }

    /// <summary>
    /// A status write. Zero resets the device (2.1.2). Setting FEATURES_OK checks the features the
    /// driver wrote: any not offered, or a modern driver without VERSION_1, and the bit does not stick,
    /// which the driver reads back as a refusal (3.1.1 step 5-6).
    /// </summary>
    public void WriteStatus(byte value, ulong? modernDriverFeatures)
    {
        if (value == 0)
        {
            Reset();
            return;
        }

        bool featuresOkNow = (value & VirtioStatus.FeaturesOk) != 0 && (Status & VirtioStatus.FeaturesOk) == 0;
        if (featuresOkNow && modernDriverFeatures is { } wanted)
        {
            if ((wanted & ~OfferedFeatures) != 0 || !VirtioFeature.Has(wanted, VirtioFeature.Version1))
            {
                value &= unchecked((byte)~VirtioStatus.FeaturesOk);
            }
            else
            {
                NegotiatedFeatures = wanted;
                ApplyFeatures();
            }
        }

        // NEEDS_RESET is the device's to set, and only a reset clears it.
        Status = (byte)((value & ~VirtioStatus.DeviceNeedsReset) | (Status & VirtioStatus.DeviceNeedsReset));
    }

    /// <summary>The driver notified queue <paramref name="queueIndex"/> that it made buffers available.</summary>
    public void Notify(int queueIndex)
    {
        if (Broken || (uint)queueIndex >= (uint)_queues.Length)
        {
            return;
        }

        ProcessQueue(_queues[queueIndex]);
    }

    /// <summary>Reading the ISR returns its bits and clears them, lowering the interrupt (4.1.4.5).</summary>
    public byte ReadIsrAndClear()
    {
        byte isr = Isr;
        Isr = 0;
        InterruptLevel?.Invoke(false);
        return isr;
    }

    public void Reset()
    {
        Status = 0;
        NegotiatedFeatures = 0;
        Isr = 0;
        Broken = false;
        BrokenReason = null;
        foreach (var queue in _queues)
        {
            queue.Reset();
        }

        OnReset();
        InterruptLevel?.Invoke(false);
    }

    protected GuestRam Ram { get; }

    /// <summary>Serves what the driver made available on <paramref name="queue"/>.</summary>
    protected abstract void ProcessQueue(SplitVirtqueue queue);

    /// <summary>The device's reaction to the negotiated features (virtio-blk: the write cache without CONFIG_WCE).</summary>
    protected virtual void OnFeaturesNegotiated(ulong features)
    {
    }

    protected virtual void OnReset()
    {
    }

    protected void RaiseQueueInterrupt()
    {
        Isr |= IsrQueue;
        InterruptLevel?.Invoke(true);
    }

    /// <summary>The device changed its configuration: bump the generation and interrupt (4.1.4.3, 4.1.5.3).</summary>
    protected void NotifyConfigChanged()
    {
        ConfigGeneration++;
        Isr |= IsrConfig;
        InterruptLevel?.Invoke(true);
    }

    /// <summary>
    /// The driver broke the protocol. As QEMU's virtio_error: stop serving queues; a VERSION_1
    /// driver also sees DEVICE_NEEDS_RESET and a configuration interrupt (2.1.2).
    /// </summary>
    protected void MarkBroken(string reason)
    {
        Broken = true;
        BrokenReason = reason;
        if (VirtioFeature.Has(NegotiatedFeatures, VirtioFeature.Version1))
        {
            Status |= VirtioStatus.DeviceNeedsReset;
            if ((Status & VirtioStatus.DriverOk) != 0)
            {
                NotifyConfigChanged();
            }
        }
    }

    private void ApplyFeatures()
    {
        foreach (var queue in _queues)
        {
            queue.IndirectDescriptors = VirtioFeature.Has(NegotiatedFeatures, VirtioFeature.RingIndirectDesc);
            queue.EventIndex = VirtioFeature.Has(NegotiatedFeatures, VirtioFeature.RingEventIdx);
        }

        OnFeaturesNegotiated(NegotiatedFeatures);
    }
}

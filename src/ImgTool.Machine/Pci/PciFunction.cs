using System.Buffers.Binary;

namespace ImgTool.Machine.Pci;

/// <summary>
/// A PCI function's 256-byte configuration space (PCI Local Bus spec 3.0, 6.1) with a write mask per
/// byte, as real hardware has (and QEMU keeps as wmask): identity and type bits are read-only, BARs
/// keep only their address bits, the command register gates I/O and memory decoding of the BARs,
/// and a capability list hangs off 0x34. Subclasses react to writes of their own registers.
/// </summary>
internal class PciFunction
{
    public const int ConfigSpaceBytes = 256;

    // Type 0 configuration header offsets (6.1).
    public const int VendorId = 0x00, DeviceId = 0x02, Command = 0x04, Status = 0x06, RevisionId = 0x08,
        ClassCode = 0x09, CacheLineSize = 0x0C, LatencyTimer = 0x0D, HeaderType = 0x0E, Bar0 = 0x10,
        SubsystemVendorId = 0x2C, SubsystemId = 0x2E, ExpansionRomBar = 0x30, CapabilitiesPointer = 0x34,
        InterruptLine = 0x3C, InterruptPin = 0x3D;

    public const int BarCount = 6;
    public const int BarBytes = 4;

    /// <summary>Capabilities live after the 64-byte header, each 4-byte aligned (6.7).</summary>
    public const int FirstCapabilityOffset = 0x40;

    // Command register bits (6.2.2).
    public const ushort CommandIoSpace = 1 << 0, CommandMemorySpace = 1 << 1, CommandBusMaster = 1 << 2,
        CommandInterruptDisable = 1 << 10;

    // Status register bits (6.2.3).
    public const ushort StatusInterrupt = 1 << 3, StatusCapabilityList = 1 << 4;

    /// <summary>Header type bit 7: functions 1-7 of this device exist and are worth probing (6.2.1).</summary>
    public const byte HeaderTypeMultiFunction = 0x80;

    /// <summary>Interrupt pin values: 0 none, 1 INTA# ... 4 INTD# (6.2.4).</summary>
    public const byte InterruptPinA = 1;

    private const ushort WritableCommandBits = CommandIoSpace | CommandMemorySpace | CommandBusMaster | CommandInterruptDisable;
    private const int CapabilityHeaderBytes = 2;
    private const int CapabilityAlignment = 4;

    /// <summary>The configuration bytes as the function presents them.</summary>
    public readonly byte[] Config = new byte[ConfigSpaceBytes];

    private readonly byte[] _writeMask = new byte[ConfigSpaceBytes];
    private readonly PciBar?[] _bars = new PciBar?[BarCount];
    private int _nextCapability = FirstCapabilityOffset;
    private int _lastCapability;
    private bool _interruptLevel;
    private bool _interruptAsserted;

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

        BinaryPrimitives.WriteUInt16LittleEndian(_writeMask.AsSpan(Command), WritableCommandBits);
        _writeMask[CacheLineSize] = 0xFF;
        _writeMask[LatencyTimer] = 0xFF;
        _writeMask[InterruptLine] = 0xFF;
        // Device-specific registers (PAM, PIRQ routing, ...) are writable unless a capability sits there.
        _writeMask.AsSpan(FirstCapabilityOffset).Fill(0xFF);
    }

    /// <summary>Header type bit 7, which makes the OS and the BIOS scan functions 1 to 7 of this slot.</summary>
    public bool MultiFunction
    {
        get => (Config[HeaderType] & HeaderTypeMultiFunction) != 0;
        set => Config[HeaderType] = (byte)(value ? Config[HeaderType] | HeaderTypeMultiFunction : Config[HeaderType] & ~HeaderTypeMultiFunction);
    }

    public ushort CommandRegister => BinaryPrimitives.ReadUInt16LittleEndian(Config.AsSpan(Command));

    /// <summary>Receives the INTx# level (after the command register's interrupt disable); the machine routes it.</summary>
    public Action<bool>? InterruptRouting { get; set; }

    public PciBar? GetBar(int index) => _bars[index];

    public virtual uint ReadConfig(int offset, int sizeBytes)
    {
        uint value = 0;
        for (int i = 0; i < sizeBytes && offset + i < ConfigSpaceBytes; i++)
        {
            value |= (uint)Config[offset + i] << (8 * i);
        }

        return value;
    }

    public virtual void WriteConfig(int offset, int sizeBytes, uint value)
    {
        for (int i = 0; i < sizeBytes && offset + i < ConfigSpaceBytes; i++)
        {
            int at = offset + i;
            byte mask = _writeMask[at];
            Config[at] = (byte)((Config[at] & ~mask) | ((byte)(value >> (8 * i)) & mask));
        }

        int end = offset + sizeBytes;
        if (offset < Bar0 + BarCount * BarBytes && end > Command)
        {
            UpdateBarMappings();
            UpdateInterrupt();
        }
    }

    /// <summary>Declares BAR <paramref name="index"/>; it decodes once the software assigns it and enables its space.</summary>
    protected void DefineBar(int index, PciBar bar)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, BarCount);
        _bars[index] = bar;
        int at = Bar0 + index * BarBytes;
        BinaryPrimitives.WriteUInt32LittleEndian(Config.AsSpan(at), bar.TypeBits);
        BinaryPrimitives.WriteUInt32LittleEndian(_writeMask.AsSpan(at), bar.WritableMask);
    }

    /// <summary>
    /// Appends a capability (6.7): its ID, the next pointer (filled as the list grows) and
    /// <paramref name="body"/>. Returns its offset. The capability's bytes are read-only.
    /// </summary>
    protected int AddCapability(byte capabilityId, ReadOnlySpan<byte> body)
    {
        int at = _nextCapability;
        int lengthBytes = CapabilityHeaderBytes + body.Length;
        if (at + lengthBytes > ConfigSpaceBytes)
        {
            throw new InvalidOperationException("the capability list does not fit in configuration space");
        }

        Config[at] = capabilityId;
        Config[at + 1] = 0;
        body.CopyTo(Config.AsSpan(at + CapabilityHeaderBytes));
        _writeMask.AsSpan(at, lengthBytes).Clear();
        if (_lastCapability == 0)
        {
            Config[CapabilitiesPointer] = (byte)at;
        }
        else
        {
            Config[_lastCapability + 1] = (byte)at;
        }

        _lastCapability = at;
        _nextCapability = (at + lengthBytes + CapabilityAlignment - 1) & ~(CapabilityAlignment - 1);
        Config[Status] |= (byte)StatusCapabilityList;
        return at;
    }

    /// <summary>Sets the function's INTx# line; it reaches the router unless the command register disables it.</summary>
    protected void SetInterruptLevel(bool level)
    {
        _interruptLevel = level;
        UpdateInterrupt();
    }

    /// <summary>Unmaps every BAR (the function is being reset or removed).</summary>
    protected void UnmapBars()
    {
        foreach (var bar in _bars)
        {
            bar?.MoveTo(null);
        }
    }

    private void UpdateBarMappings()
    {
        ushort command = CommandRegister;
        for (int index = 0; index < BarCount; index++)
        {
            if (_bars[index] is not { } bar)
            {
                continue;
            }

            uint register = BinaryPrimitives.ReadUInt32LittleEndian(Config.AsSpan(Bar0 + index * BarBytes));
            bar.MoveTo((command & bar.DecodeEnableBit) != 0 ? bar.AddressOf(register) : null);
        }
    }

    private void UpdateInterrupt()
    {
        // Status bit 3 shows the device's request even while the command register masks it (6.2.3).
        Config[Status] = (byte)(_interruptLevel ? Config[Status] | StatusInterrupt : Config[Status] & ~StatusInterrupt);
        // The router hears only changes of the pin, as QEMU's pci_irq_handler: a line shared with
        // another device is not pulled low by a function whose own pin was never asserted.
        bool asserted = _interruptLevel && (CommandRegister & CommandInterruptDisable) == 0;
        if (asserted != _interruptAsserted)
        {
            _interruptAsserted = asserted;
            InterruptRouting?.Invoke(asserted);
        }
    }
}

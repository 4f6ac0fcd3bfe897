using System.Numerics;

namespace ImgTool.Machine.Pci;

/// <summary>
/// One base address register (PCI Local Bus spec 3.0, 6.2.5.1): a power-of-two window whose low
/// address bits are hard-wired to zero, so writing all ones and reading back yields the size mask.
/// The function maps it where its BAR register points while the command register enables decoding.
/// </summary>
internal abstract class PciBar
{
    protected PciBar(uint sizeBytes, uint minimumSizeBytes)
    {
        if (!BitOperations.IsPow2(sizeBytes) || sizeBytes < minimumSizeBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(sizeBytes), sizeBytes, $"a BAR is a power of two of at least {minimumSizeBytes} bytes");
        }

        SizeBytes = sizeBytes;
    }

    public uint SizeBytes { get; }

    /// <summary>The read-only low bits of the BAR register: space indicator, memory type, prefetchable.</summary>
    public abstract uint TypeBits { get; }

    /// <summary>The command register bit that enables this BAR's address space (6.2.2).</summary>
    public abstract ushort DecodeEnableBit { get; }

    /// <summary>Bits of the BAR register the software can write: the address bits above the size.</summary>
    public abstract uint WritableMask { get; }

    /// <summary>Where the BAR is mapped now; null when it does not decode.</summary>
    public uint? MappedAddress { get; private set; }

    /// <summary>The base address a BAR register value names.</summary>
    public uint AddressOf(uint registerValue) => registerValue & WritableMask;

    /// <summary>Maps at <paramref name="address"/> (null: unmapped), moving the window if it was elsewhere.</summary>
    public void MoveTo(uint? address)
    {
        if (address is { } wanted && !CanMapAt(wanted))
        {
            address = null;
        }

        if (address == MappedAddress)
        {
            return;
        }

        if (MappedAddress is { } old)
        {
            Unmap(old);
        }

        MappedAddress = address;
        if (address is { } at)
        {
            Map(at);
        }
    }

    /// <summary>
    /// Whether the window fits at this address. Address 0 is unassigned, and a window that would wrap
    /// (the all-ones a sizing probe leaves behind) is not decoded, as QEMU's pci_bar_address decides.
    /// </summary>
    protected abstract bool CanMapAt(uint address);

    protected abstract void Map(uint address);

    protected abstract void Unmap(uint address);
}

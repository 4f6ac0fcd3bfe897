namespace ImgTool.Machine.Devices;

/// <summary>
/// The MC146818 RTC and CMOS RAM (ports 0x70/0x71) with the registers SeaBIOS reads: time in BCD
/// from a fixed epoch plus virtual time (deterministic runs), status A-D, shutdown status (0x0F),
/// floppy types (0x10), memory sizes (0x15-0x18, 0x30/0x31, 0x34/0x35) and boot order (0x38/0x3D).
/// </summary>
internal sealed class CmosRtc : IPortDevice
{
    private static readonly DateTime Epoch = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
    private readonly byte[] _ram = new byte[128];
    private readonly Func<long> _nowNs;
    private int _index;

    public CmosRtc(Func<long> nowNs, uint ramSizeBytes)
    {
        _nowNs = nowNs;
        _ram[0x0A] = 0x26; // 32.768 kHz time base, 1024 Hz rate; UIP clear
        _ram[0x0B] = 0x02; // 24-hour mode, BCD
        _ram[0x0D] = 0x80; // valid RAM and time
        _ram[0x10] = 0x00; // no floppy drives
        _ram[0x14] = 0x06; // equipment: FPU present, display (SeaBIOS reads it)
        _ram[0x15] = 0x80; // 640 KiB base memory
        _ram[0x16] = 0x02;
        uint extendedKiB = Math.Min(65535u, ramSizeBytes > 0x100000 ? (ramSizeBytes - 0x100000) / 1024 : 0);
        _ram[0x17] = _ram[0x30] = (byte)extendedKiB;
        _ram[0x18] = _ram[0x31] = (byte)(extendedKiB >> 8);
        uint above16M = ramSizeBytes > 0x1000000 ? (ramSizeBytes - 0x1000000) >> 16 : 0;
        _ram[0x34] = (byte)above16M;
        _ram[0x35] = (byte)(above16M >> 8);
        _ram[0x3D] = 0x02; // boot order: hard disk first (QEMU's encoding, SeaBIOS reads 0x3D/0x38)
        _ram[0x38] = 0x00;
        _ram[0x5F] = 0x00; // CPU count - 1
    }

    public uint Read(ushort port, int sizeBytes)
    {
        if (port == 0x70)
        {
            return 0xFF;
        }

        var now = Epoch.AddTicks(_nowNs() / 100);
        return _index switch
        {
            0x00 => Bcd(now.Second),
            0x02 => Bcd(now.Minute),
            0x04 => Bcd(now.Hour),
            0x06 => Bcd((int)now.DayOfWeek + 1),
            0x07 => Bcd(now.Day),
            0x08 => Bcd(now.Month),
            0x09 => Bcd(now.Year % 100),
            0x32 => Bcd(now.Year / 100),
            0x0C => ReadAndClear(),
            _ => _ram[_index],
        };
    }

    private uint ReadAndClear()
    {
        uint value = _ram[0x0C];
        _ram[0x0C] = 0;
        return value;
    }

    private static uint Bcd(int value) => (uint)(((value / 10) << 4) | (value % 10));

    public void Write(ushort port, int sizeBytes, uint value)
    {
        if (port == 0x70)
        {
            _index = (int)(value & 0x7F); // bit 7 is the NMI mask
            return;
        }

        if (_index is 0x0C or 0x0D)
        {
            return;
        }

        _ram[_index] = (byte)(_index == 0x0A ? value & 0x7F : value);
    }
}

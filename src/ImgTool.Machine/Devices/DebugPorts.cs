using System.Text;
using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// Port 0x80, the POST code port: firmware and Linux (its io_delay) write progress codes or dummies
/// there; the last one is kept as information for a diagnosis.
/// </summary>
internal sealed class PostCodePort : IPortDevice
{
    public byte LastPostCode { get; private set; }

    public long Writes { get; private set; }

    public uint Read(ushort offset, int sizeBytes) => LastPostCode;

    public void Write(ushort offset, int sizeBytes, uint value)
    {
        LastPostCode = (byte)value;
        Writes++;
    }
}

/// <summary>
/// QEMU's ISA debug console at 0x402 (hw/char/debugcon.c): reads 0xE9, by which SeaBIOS knows it is
/// there, and logs every byte written (SeaBIOS's debug output).
/// </summary>
internal sealed class DebugConsole : IPortDevice
{
    private const byte PresenceSignature = 0xE9;
    private readonly StringBuilder _log = new();

    public string Log => _log.ToString();

    public uint Read(ushort offset, int sizeBytes) => PresenceSignature;

    public void Write(ushort offset, int sizeBytes, uint value) => _log.Append((char)(byte)value);
}

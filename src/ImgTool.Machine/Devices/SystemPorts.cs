using System.Text;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Devices;

/// <summary>
/// The small ports of a PC: 0x92 (fast A20, reset), the i8042 keyboard controller at 0x60/0x64
/// (self-test, command byte, output port with A20 and reset, a keyboard that acknowledges commands),
/// the debug console 0x402 (reads 0xE9, SeaBIOS logs there) and the POST port 0x80.
/// </summary>
internal sealed class SystemPorts : IPortDevice
{
    private readonly PhysicalMemory _memory;
    private readonly Action _reset;
    private readonly Queue<byte> _output = new();
    private readonly StringBuilder _debugLog = new();
    private byte _commandByte = 0x61;
    private byte _pendingCommand;
    private byte _port92;

    public SystemPorts(PhysicalMemory memory, Action reset)
    {
        _memory = memory;
        _reset = reset;
    }

    public string DebugLog => _debugLog.ToString();

    public byte LastPostCode { get; private set; }

    private void SetA20(bool enabled) => _memory.A20Mask = enabled ? 0xFFFFFFFF : 0xFFEFFFFF;

    public uint Read(ushort port, int sizeBytes)
    {
        switch (port)
        {
            case 0x92: return _port92;
            case 0x402: return 0xE9;
            case 0x64: return (uint)(0x1C | (_output.Count > 0 ? 1 : 0));
            case 0x60: return _output.Count > 0 ? _output.Dequeue() : 0u;
            default: return 0xFF;
        }
    }

    public void Write(ushort port, int sizeBytes, uint value)
    {
        byte b = (byte)value;
        switch (port)
        {
            case 0x80:
                LastPostCode = b;
                break;
            case 0x402:
                _debugLog.Append((char)b);
                break;
            case 0x92:
                _port92 = (byte)(b & 0x02);
                SetA20((b & 0x02) != 0);
                if ((b & 1) != 0)
                {
                    _reset();
                }

                break;
            case 0x64:
                ControllerCommand(b);
                break;
            case 0x60:
                DataWrite(b);
                break;
        }
    }

    private void ControllerCommand(byte command)
    {
        _pendingCommand = 0;
        switch (command)
        {
            case 0x20: _output.Enqueue(_commandByte); break;
            case 0x60: case 0xD1: case 0xD2: case 0xD3: case 0xD4: _pendingCommand = command; break;
            case 0xAA: _output.Enqueue(0x55); break; // controller self-test passed
            case 0xAB: _output.Enqueue(0x00); break; // keyboard interface test passed
            case 0xA9: _output.Enqueue(0xFF); break; // no auxiliary (mouse) port
            case 0xD0: _output.Enqueue((byte)(0x01 | (_memory.A20Mask == 0xFFFFFFFF ? 2 : 0))); break;
            case 0xDD: SetA20(false); break;
            case 0xDF: SetA20(true); break;
            case >= 0xF0:
                if ((command & 1) == 0)
                {
                    _reset(); // pulse output port bit 0: CPU reset
                }

                break;
        }
    }

    private void DataWrite(byte value)
    {
        switch (_pendingCommand)
        {
            case 0x60:
                _commandByte = value;
                break;
            case 0xD1:
                SetA20((value & 2) != 0);
                if ((value & 1) == 0)
                {
                    _reset();
                }

                break;
            case 0xD2:
            case 0xD3:
                _output.Enqueue(value);
                break;
            case 0xD4:
                break; // no mouse: commands to it get no answer
            default:
                // A keyboard: ACK every command; reset answers ACK and self-test passed,
                // identify answers an MF2 keyboard.
                _output.Enqueue(0xFA);
                if (value == 0xFF)
                {
                    _output.Enqueue(0xAA);
                }
                else if (value == 0xF2)
                {
                    _output.Enqueue(0xAB);
                    _output.Enqueue(0x83);
                }

                break;
        }

        _pendingCommand = 0;
    }
}

using System.Text;

namespace ImgTool.Machine.Devices;

/// <summary>
/// A 16550A UART (COM1 at 0x3F8, IRQ4) with a transmitter only: every byte written to THR goes to
/// the output sink at once, so LSR always reports THR and transmitter empty. Receive is idle.
/// </summary>
internal sealed class Uart16550 : IPortDevice
{
    private readonly ushort _base;
    private readonly Action<byte> _output;
    private readonly Action<bool> _irq;
    private byte _ier, _lcr, _mcr, _scr, _fcr;
    private ushort _divisor = 12;
    private bool _thrInterruptPending;

    public Uart16550(ushort basePort, Action<byte> output, Action<bool> irq)
    {
        _base = basePort;
        _output = output;
        _irq = irq;
    }

    private bool Dlab => (_lcr & 0x80) != 0;

    public uint Read(ushort port, int sizeBytes)
    {
        switch (port - _base)
        {
            case 0: return Dlab ? (uint)(_divisor & 0xFF) : 0;
            case 1: return Dlab ? (uint)(_divisor >> 8) : _ier;
            case 2:
            {
                uint fifo = (_fcr & 1) != 0 ? 0xC0u : 0;
                if (_thrInterruptPending && (_ier & 2) != 0)
                {
                    _thrInterruptPending = false;
                    UpdateIrq();
                    return fifo | 0x02;
                }

                return fifo | 0x01;
            }

            case 3: return _lcr;
            case 4: return _mcr;
            case 5: return 0x60; // THR empty, transmitter empty
            case 6: return (_mcr & 0x10) != 0 ? (uint)((_mcr & 0x0C) << 4 | (_mcr & 0x03) << 4) : 0xB0;
            default: return _scr;
        }
    }

    public void Write(ushort port, int sizeBytes, uint value)
    {
        byte b = (byte)value;
        switch (port - _base)
        {
            case 0:
                if (Dlab)
                {
                    _divisor = (ushort)((_divisor & 0xFF00) | b);
                }
                else
                {
                    _output(b);
                    _thrInterruptPending = true;
                    UpdateIrq();
                }

                break;
            case 1:
                if (Dlab)
                {
                    _divisor = (ushort)((_divisor & 0xFF) | (b << 8));
                }
                else
                {
                    _ier = (byte)(b & 0x0F);
                    _thrInterruptPending = (_ier & 2) != 0;
                    UpdateIrq();
                }

                break;
            case 2: _fcr = b; break;
            case 3: _lcr = b; break;
            case 4: _mcr = b; UpdateIrq(); break;
            case 7: _scr = b; break;
        }
    }

    private void UpdateIrq() => _irq(_thrInterruptPending && (_ier & 2) != 0 && (_mcr & 0x08) != 0);
}

/// <summary>Collects what the guest writes to COM1, as text lines for matching and diagnosis.</summary>
internal sealed class SerialCapture
{
    private readonly StringBuilder _text = new();

    public event Action<byte>? ByteWritten;

    public int Length => _text.Length;

    public void Write(byte value)
    {
        _text.Append((char)value);
        ByteWritten?.Invoke(value);
    }

    public override string ToString() => _text.ToString();
}

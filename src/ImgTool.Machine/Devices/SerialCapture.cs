using System.Text;

namespace ImgTool.Machine.Devices;

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

    /// <summary>Whether the output ends, give or take trailing line ends, with a line containing <paramref name="text"/>.</summary>
    public bool LastLineContains(string text)
    {
        string all = _text.ToString().TrimEnd('\r', '\n');
        int lineStart = all.LastIndexOf('\n') + 1;
        return all.AsSpan(lineStart).Contains(text, StringComparison.Ordinal);
    }

    public override string ToString() => _text.ToString();
}

using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Devices;

/// <summary>The BIOS ROM (read-only): mapped at the top of 4 GiB and its last 128 KiB at 0xE0000.</summary>
internal sealed class RomRegion : IMemoryRegion
{
    private readonly byte[] _image;
    private readonly int _offset;

    public RomRegion(byte[] image, int offset)
    {
        _image = image;
        _offset = offset;
    }

    public uint Read(uint offsetBytes, int sizeBytes)
    {
        uint value = 0;
        for (int i = 0; i < sizeBytes; i++)
        {
            long at = _offset + offsetBytes + i;
            value |= (uint)(at < _image.Length ? _image[at] : 0xFF) << (8 * i);
        }

        return value;
    }

    public void Write(uint offsetBytes, int sizeBytes, uint value)
    {
        // ROM: writes are dropped.
    }
}

using System.Buffers.Binary;
using System.Text;
using ImgTool.Machine.Bus;

namespace ImgTool.Machine.Devices;

/// <summary>
/// QEMU's firmware configuration device, I/O interface only (QEMU docs/specs/fw_cfg.rst): selector
/// at 0x510 (16-bit write), data at 0x511 (byte reads advance). Items: signature "QEMU" (0x0000),
/// ID (0x0001, bit 0 = traditional interface, no DMA), the file directory (0x0019, big-endian) and
/// the files the machine adds from 0x0020 on.
/// </summary>
internal sealed class FwCfg : IPortDevice
{
    public const ushort SelectorPort = 0x510;
    public const int PortCount = 2;
    private const ushort SelectorOffset = 0, DataOffset = 1;

    private const ushort SignatureKey = 0x0000, IdKey = 0x0001, RamSizeKey = 0x0003, CpuCountKey = 0x0005,
        MaxCpusKey = 0x000F, FileDirectoryKey = 0x0019, FirstFileKey = 0x0020;

    // A directory entry: size (be32), select (be16), reserved (be16), name (56 bytes, NUL-terminated).
    private const int FileNameBytes = 56, FileEntryBytes = 4 + 2 + 2 + FileNameBytes;

    private readonly Dictionary<ushort, byte[]> _items = [];
    private readonly List<(string Name, ushort Key, int Size)> _files = [];
    private byte[] _current = [];
    private int _position;

    public FwCfg(uint ramSizeBytes)
    {
        _items[SignatureKey] = "QEMU"u8.ToArray();
        _items[IdKey] = [1, 0, 0, 0];
        var ram = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(ram, ramSizeBytes);
        _items[RamSizeKey] = ram;
        _items[CpuCountKey] = [1, 0];
        _items[MaxCpusKey] = [1, 0];
        RebuildDirectory();
    }

    public void AddFile(string name, byte[] contents)
    {
        ushort key = (ushort)(FirstFileKey + _files.Count);
        _items[key] = contents;
        _files.Add((name, key, contents.Length));
        RebuildDirectory();
    }

    private void RebuildDirectory()
    {
        var directory = new byte[4 + _files.Count * FileEntryBytes];
        BinaryPrimitives.WriteUInt32BigEndian(directory, (uint)_files.Count);
        int at = 4;
        foreach (var (name, key, size) in _files.OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            BinaryPrimitives.WriteUInt32BigEndian(directory.AsSpan(at), (uint)size);
            BinaryPrimitives.WriteUInt16BigEndian(directory.AsSpan(at + 4), key);
            Encoding.ASCII.GetBytes(name).AsSpan(0, Math.Min(name.Length, FileNameBytes - 1)).CopyTo(directory.AsSpan(at + 8));
            at += FileEntryBytes;
        }

        _items[FileDirectoryKey] = directory;
    }

    public uint Read(ushort offset, int sizeBytes)
    {
        if (offset != DataOffset)
        {
            return 0;
        }

        uint value = 0;
        for (int i = 0; i < sizeBytes; i++)
        {
            value |= (uint)(_position < _current.Length ? _current[_position++] : 0) << (8 * i);
        }

        return value;
    }

    public void Write(ushort offset, int sizeBytes, uint value)
    {
        if (offset == SelectorOffset)
        {
            _current = _items.GetValueOrDefault((ushort)value) ?? [];
            _position = 0;
        }
    }
}

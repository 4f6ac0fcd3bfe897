using System.Buffers.Binary;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>Reads and overwrites big-endian fields of an image file in place (qcow2's tables), to damage it on purpose.</summary>
internal static class BigEndianPatch
{
    public static async Task<long> ReadAsync(string path, long offset, int width = 8)
    {
        byte[] buffer = new byte[width];
        await using var stream = File.OpenRead(path);
        stream.Position = offset;
        await stream.ReadExactlyAsync(buffer);
        return width == 8 ? BinaryPrimitives.ReadInt64BigEndian(buffer) : BinaryPrimitives.ReadUInt32BigEndian(buffer);
    }

    public static async Task PatchAsync(string path, long offset, long value, int width)
    {
        byte[] buffer = new byte[width];
        switch (width)
        {
            case 8: BinaryPrimitives.WriteInt64BigEndian(buffer, value); break;
            case 4: BinaryPrimitives.WriteUInt32BigEndian(buffer, (uint)value); break;
            default: BinaryPrimitives.WriteUInt16BigEndian(buffer, (ushort)value); break;
        }

        await using var stream = new FileStream(path, FileMode.Open);
        stream.Position = offset;
        await stream.WriteAsync(buffer);
    }
}

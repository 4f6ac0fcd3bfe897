using System.Buffers.Binary;
using System.Numerics;

namespace ImgTool.Formats.Vhdx;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of every VHDX header, region table and log entry
/// (VHDX spec 2.2.2). System.IO.Hashing.Crc32 is the IEEE polynomial, so it does not fit;
/// BitOperations.Crc32C is the hardware instruction (SSE4.2 / ARMv8) with a managed fallback.
/// </summary>
internal static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(uint.MaxValue, data);

    /// <summary>The checksum of <paramref name="data"/> with its 4-byte checksum field at
    /// <paramref name="checksumOffset"/> taken as zero, as the spec defines it.</summary>
    public static uint ComputeWithZeroField(ReadOnlySpan<byte> data, int checksumOffset)
    {
        uint crc = Append(uint.MaxValue, data[..checksumOffset]);
        crc = BitOperations.Crc32C(crc, 0u);
        crc = Append(crc, data[(checksumOffset + 4)..]);
        return ~crc;
    }

    /// <summary>Stores the checksum of <paramref name="data"/> into its checksum field.</summary>
    public static void Stamp(Span<byte> data, int checksumOffset)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(data[checksumOffset..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(data[checksumOffset..], Compute(data));
    }

    public static bool Verify(ReadOnlySpan<byte> data, int checksumOffset) =>
        BinaryPrimitives.ReadUInt32LittleEndian(data[checksumOffset..]) == ComputeWithZeroField(data, checksumOffset);

    private static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }

        foreach (byte b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return crc;
    }
}

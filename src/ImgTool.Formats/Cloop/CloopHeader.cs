using System.Buffers.Binary;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Cloop;

/// <summary>
/// A cloop 2.0 image (Linux compressed loop, as create_compressed_fs writes it): a 128-byte shell-script preamble,
/// then big-endian block size and block count, then block count + 1 offsets (64-bit) of the zlib-compressed blocks,
/// so that block i is the bytes between offset i and offset i + 1.
/// </summary>
internal readonly record struct CloopHeader(uint BlockBytes, uint BlockCount)
{
    public const int PreambleBytes = 128;
    public const int BlockSizeField = PreambleBytes;
    public const int BlockCountField = BlockSizeField + sizeof(uint);
    public const int OffsetsField = BlockCountField + sizeof(uint);

    /// <summary>The script a V2.0 image starts with (QEMU's cloop_probe compares it).</summary>
    public static ReadOnlySpan<byte> Preamble => "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"u8;

    /// <summary>As QEMU: the head matches the preamble as far as both go.</summary>
    public static bool Matches(ReadOnlySpan<byte> head)
    {
        int length = Math.Min(head.Length, Preamble.Length);
        return length > 0 && head[..length].SequenceEqual(Preamble[..length]);
    }

    public static CloopHeader Read(ReadOnlySpan<byte> bytes, string? fileName)
    {
        if (bytes.Length < OffsetsField || !Matches(bytes))
        {
            throw new ImageFormatException("image not in cloop format (a V2.0 header)", fileName);
        }

        return new CloopHeader(BinaryPrimitives.ReadUInt32BigEndian(bytes[BlockSizeField..]), BinaryPrimitives.ReadUInt32BigEndian(bytes[BlockCountField..]));
    }
}

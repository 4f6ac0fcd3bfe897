namespace ImgTool.Formats.Dmg;

/// <summary>
/// Apple Data Compression (UDCO chunks), a byte-oriented LZ77: a control byte 0x80-0xFF stores (b &amp; 0x7f) + 1
/// literal bytes; 0x00-0x3F, with one more byte, copies ((b &gt;&gt; 2) &amp; 0xf) + 3 bytes from a 10-bit distance;
/// 0x40-0x7F, with two more bytes, copies (b &amp; 0x3f) + 4 bytes from a 16-bit distance. A distance d copies from
/// d + 1 bytes back, byte by byte (a copy may overlap what it writes).
/// </summary>
internal static class DmgAdc
{
    /// <summary>Decompresses into exactly destination.Length bytes; false when the stream is malformed, reaches
    /// before the start of the output, or holds more or less than that.</summary>
    public static bool TryDecompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        int input = 0;
        int output = 0;
        while (input < source.Length)
        {
            byte control = source[input];
            if ((control & 0x80) != 0)
            {
                int literal = (control & 0x7f) + 1;
                if (input + 1 + literal > source.Length || output + literal > destination.Length)
                {
                    return false;
                }

                source.Slice(input + 1, literal).CopyTo(destination[output..]);
                input += 1 + literal;
                output += literal;
                continue;
            }

            int length;
            int distance;
            if ((control & 0x40) != 0)
            {
                if (input + 3 > source.Length)
                {
                    return false;
                }

                length = (control & 0x3f) + 4;
                distance = (source[input + 1] << 8) | source[input + 2];
                input += 3;
            }
            else
            {
                if (input + 2 > source.Length)
                {
                    return false;
                }

                length = ((control >> 2) & 0xf) + 3;
                distance = ((control & 0x03) << 8) | source[input + 1];
                input += 2;
            }

            int from = output - distance - 1;
            if (from < 0 || output + length > destination.Length)
            {
                return false;
            }

            for (int i = 0; i < length; i++)
            {
                destination[output + i] = destination[from + i];
            }

            output += length;
        }

        return output == destination.Length;
    }
}

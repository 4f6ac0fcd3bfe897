namespace ImgTool.Machine.Virtio;

/// <summary>
/// The buffers of one popped descriptor chain, in order: the device-readable ones, then the
/// device-writable ones (2.6.4.2). The array is the queue's own, reused for every request.
/// Offsets address the readable bytes, or the writable bytes, as one contiguous stream.
/// </summary>
internal sealed class VirtqChain
{
    private readonly VirtqBuffer[] _buffers;

    public VirtqChain(int capacity) => _buffers = new VirtqBuffer[capacity];

    public ushort Head { get; private set; }

    public int Count { get; private set; }

    public ulong ReadableBytes { get; private set; }

    public ulong WritableBytes { get; private set; }

    public int Capacity => _buffers.Length;

    public ReadOnlySpan<VirtqBuffer> Buffers => _buffers.AsSpan(0, Count);

    public void Start(ushort head)
    {
        Head = head;
        Count = 0;
        ReadableBytes = 0;
        WritableBytes = 0;
    }

    /// <summary>Adds a buffer; false when the chain is full or a readable buffer follows a writable one.</summary>
    public bool TryAdd(VirtqBuffer buffer)
    {
        if (Count == _buffers.Length || (!buffer.DeviceWritable && WritableBytes > 0))
        {
            return false;
        }

        _buffers[Count++] = buffer;
        if (buffer.DeviceWritable)
        {
            WritableBytes += buffer.LengthBytes;
        }
        else
        {
            ReadableBytes += buffer.LengthBytes;
        }

        return true;
    }

    /// <summary>Copies readable bytes from <paramref name="offsetBytes"/> into <paramref name="destination"/>.</summary>
    public void ReadFrom(GuestRam ram, ulong offsetBytes, Span<byte> destination)
    {
        foreach (var buffer in Buffers)
        {
            if (destination.IsEmpty || buffer.DeviceWritable)
            {
                break;
            }

            if (offsetBytes >= buffer.LengthBytes)
            {
                offsetBytes -= buffer.LengthBytes;
                continue;
            }

            int length = (int)Math.Min((ulong)destination.Length, buffer.LengthBytes - offsetBytes);
            ram.CopyOut(buffer.Address + offsetBytes, destination[..length]);
            destination = destination[length..];
            offsetBytes = 0;
        }
    }

    /// <summary>Copies <paramref name="source"/> into the writable bytes from <paramref name="offsetBytes"/>.</summary>
    public void WriteTo(GuestRam ram, ulong offsetBytes, ReadOnlySpan<byte> source)
    {
        foreach (var buffer in Buffers)
        {
            if (source.IsEmpty)
            {
                break;
            }

            if (!buffer.DeviceWritable)
            {
                continue;
            }

            if (offsetBytes >= buffer.LengthBytes)
            {
                offsetBytes -= buffer.LengthBytes;
                continue;
            }

            int length = (int)Math.Min((ulong)source.Length, buffer.LengthBytes - offsetBytes);
            ram.CopyIn(buffer.Address + offsetBytes, source[..length]);
            source = source[length..];
            offsetBytes = 0;
        }
    }
}

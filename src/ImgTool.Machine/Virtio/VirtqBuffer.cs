namespace ImgTool.Machine.Virtio;

/// <summary>One guest buffer of a descriptor chain; device-writable buffers follow the readable ones (2.6.4.2).</summary>
internal readonly record struct VirtqBuffer(ulong Address, uint LengthBytes, bool DeviceWritable);

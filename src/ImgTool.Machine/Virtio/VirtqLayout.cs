namespace ImgTool.Machine.Virtio;

/// <summary>
/// The split virtqueue's memory layout (virtio 1.1, 2.6): the descriptor table, the driver area
/// (available ring) and the device area (used ring), their field offsets and element sizes.
/// </summary>
internal static class VirtqLayout
{
    // struct virtq_desc (2.6.5): le64 addr, le32 len, le16 flags, le16 next.
    public const int DescriptorBytes = 16;
    public const int DescriptorAddress = 0, DescriptorLength = DescriptorAddress + 8, DescriptorFlags = DescriptorLength + 4,
        DescriptorNext = DescriptorFlags + 2;

    // Descriptor flags (2.6.5).
    public const ushort DescriptorFlagNext = 1, DescriptorFlagWrite = 2, DescriptorFlagIndirect = 4;

    // struct virtq_avail (2.6.6): le16 flags, le16 idx, le16 ring[size], le16 used_event.
    public const int AvailFlags = 0, AvailIndex = AvailFlags + 2, AvailRing = AvailIndex + 2;
    public const int AvailElementBytes = 2;
    public const ushort AvailFlagNoInterrupt = 1;

    // struct virtq_used (2.6.8): le16 flags, le16 idx, {le32 id, le32 len} ring[size], le16 avail_event.
    public const int UsedFlags = 0, UsedIndex = UsedFlags + 2, UsedRing = UsedIndex + 2;
    public const int UsedElementBytes = 8;
    public const int UsedElementId = 0, UsedElementLength = UsedElementId + 4;

    /// <summary>used_event and avail_event, the 16-bit fields after each ring (VIRTIO_F_EVENT_IDX).</summary>
    public const int EventFieldBytes = 2;

    /// <summary>The legacy interface's fixed layout aligns the used ring to 4096 bytes (2.6.2, 4.1.4.8).</summary>
    public const uint LegacyAlignment = 4096;
    public const int LegacyPfnShift = 12;

    public static uint DescriptorTableBytes(int size) => (uint)(DescriptorBytes * size);

    /// <summary>flags, idx, ring and used_event.</summary>
    public static uint AvailBytes(int size) => (uint)(AvailRing + AvailElementBytes * size + EventFieldBytes);

    /// <summary>flags, idx, ring and avail_event.</summary>
    public static uint UsedBytes(int size) => (uint)(UsedRing + UsedElementBytes * size + EventFieldBytes);

    /// <summary>used_event sits after the available ring's last element (2.6.7.1, VIRTIO_F_EVENT_IDX).</summary>
    public static uint UsedEventOffset(int size) => (uint)(AvailRing + AvailElementBytes * size);

    /// <summary>avail_event sits after the used ring's last element (2.6.10.1).</summary>
    public static uint AvailEventOffset(int size) => (uint)(UsedRing + UsedElementBytes * size);
}

namespace ImgTool.Machine.Virtio;

/// <summary>struct virtio_blk_config (virtio 1.1, 5.2.4): field offsets, each after the one before.</summary>
internal static class VirtioBlkConfig
{
    public const int Capacity = 0;
    public const int SizeMax = Capacity + 8;
    public const int SegMax = SizeMax + 4;
    public const int GeometryCylinders = SegMax + 4;
    public const int GeometryHeads = GeometryCylinders + 2;
    public const int GeometrySectors = GeometryHeads + 1;
    public const int BlockSize = GeometrySectors + 1;
    public const int TopologyPhysicalBlockExponent = BlockSize + 4;
    public const int TopologyAlignmentOffset = TopologyPhysicalBlockExponent + 1;
    public const int TopologyMinIoSize = TopologyAlignmentOffset + 1;
    public const int TopologyOptIoSize = TopologyMinIoSize + 2;
    public const int Writeback = TopologyOptIoSize + 4;
    public const int Unused0 = Writeback + 1;
    public const int NumQueues = Unused0 + 1;

    /// <summary>Through num_queues: the fields this device defines (discard and write-zeroes limits are not offered).</summary>
    public const int SizeBytes = NumQueues + 2;

    /// <summary>The legacy geometry BIOSes use beside LBA: 16 heads, 63 sectors per track.</summary>
    public const int Heads = 16, SectorsPerTrack = 63;
}

namespace ImgTool.Machine.Virtio;

/// <summary>struct virtio_blk_req (virtio 1.1, 5.2.6): header layout, request types and status values.</summary>
internal static class VirtioBlkRequest
{
    // The device-readable header: le32 type, le32 reserved (ioprio in legacy), le64 sector.
    public const int Type = 0, Reserved = Type + 4, Sector = Reserved + 4, HeaderBytes = Sector + 8;

    public const uint TypeIn = 0, TypeOut = 1, TypeFlush = 4, TypeGetId = 8;

    public const byte StatusOk = 0, StatusIoError = 1, StatusUnsupported = 2;

    /// <summary>The GET_ID answer: a serial number of up to 20 bytes, NUL-padded (5.2.6).</summary>
    public const int IdBytes = 20;

    /// <summary>Sectors are 512 bytes whatever blk_size says (5.2.6).</summary>
    public const int SectorBytes = 512;
}

using System.Buffers.Binary;

namespace ImgTool.Formats.Qed;

/// <summary>
/// The QED header at offset 0 (docs/interop/qed_spec.rst "Header"), all fields little-endian. Parses and
/// serializes only; <see cref="QedHeaderValidation"/> checks the fields against the spec and the file.
/// </summary>
internal readonly record struct QedHeader(
    uint ClusterSize,
    uint TableSize,
    uint HeaderClusters,
    QedFeatures Features,
    ulong CompatFeatures,
    ulong AutoclearFeatures,
    ulong L1TableOffset,
    ulong ImageSize,
    uint BackingFileNameOffset,
    uint BackingFileNameSize)
{
    /// <summary>"QED\0" read as a little-endian uint32.</summary>
    public const uint Magic = 'Q' | ('E' << 8) | ('D' << 16);

    public const int MagicField = 0;
    public const int ClusterSizeField = MagicField + 4;
    public const int TableSizeField = ClusterSizeField + 4;
    public const int HeaderSizeField = TableSizeField + 4;
    public const int FeaturesField = HeaderSizeField + 4;
    public const int CompatFeaturesField = FeaturesField + 8;
    public const int AutoclearFeaturesField = CompatFeaturesField + 8;
    public const int L1TableOffsetField = AutoclearFeaturesField + 8;
    public const int ImageSizeField = L1TableOffsetField + 8;
    public const int BackingFileNameOffsetField = ImageSizeField + 8;
    public const int BackingFileNameSizeField = BackingFileNameOffsetField + 4;

    /// <summary>The header's size: 64 bytes. The backing file name QEMU writes follows it directly.</summary>
    public const int SizeBytes = BackingFileNameSizeField + 4;

    public static bool HasMagic(ReadOnlySpan<byte> head) =>
        head.Length >= SizeBytes && BinaryPrimitives.ReadUInt32LittleEndian(head) == Magic;

    public static QedHeader Read(ReadOnlySpan<byte> raw) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(raw[ClusterSizeField..]),
        BinaryPrimitives.ReadUInt32LittleEndian(raw[TableSizeField..]),
        BinaryPrimitives.ReadUInt32LittleEndian(raw[HeaderSizeField..]),
        (QedFeatures)BinaryPrimitives.ReadUInt64LittleEndian(raw[FeaturesField..]),
        BinaryPrimitives.ReadUInt64LittleEndian(raw[CompatFeaturesField..]),
        BinaryPrimitives.ReadUInt64LittleEndian(raw[AutoclearFeaturesField..]),
        BinaryPrimitives.ReadUInt64LittleEndian(raw[L1TableOffsetField..]),
        BinaryPrimitives.ReadUInt64LittleEndian(raw[ImageSizeField..]),
        BinaryPrimitives.ReadUInt32LittleEndian(raw[BackingFileNameOffsetField..]),
        BinaryPrimitives.ReadUInt32LittleEndian(raw[BackingFileNameSizeField..]));

    /// <summary>Writes the 64 header bytes; whatever follows them (the backing name, unknown compat data) is left alone.</summary>
    public void Write(Span<byte> raw)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(raw[MagicField..], Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(raw[ClusterSizeField..], ClusterSize);
        BinaryPrimitives.WriteUInt32LittleEndian(raw[TableSizeField..], TableSize);
        BinaryPrimitives.WriteUInt32LittleEndian(raw[HeaderSizeField..], HeaderClusters);
        BinaryPrimitives.WriteUInt64LittleEndian(raw[FeaturesField..], (ulong)Features);
        BinaryPrimitives.WriteUInt64LittleEndian(raw[CompatFeaturesField..], CompatFeatures);
        BinaryPrimitives.WriteUInt64LittleEndian(raw[AutoclearFeaturesField..], AutoclearFeatures);
        BinaryPrimitives.WriteUInt64LittleEndian(raw[L1TableOffsetField..], L1TableOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(raw[ImageSizeField..], ImageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(raw[BackingFileNameOffsetField..], BackingFileNameOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(raw[BackingFileNameSizeField..], BackingFileNameSize);
    }

    public byte[] ToBytes()
    {
        byte[] raw = new byte[SizeBytes];
        Write(raw);
        return raw;
    }

    public bool Has(QedFeatures feature) => (Features & feature) == feature;
}

using System.Buffers.Binary;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.QcowV1;

/// <summary>
/// The 48-byte header of a qcow version 1 image, all fields big-endian (QEMU's original format, block/qcow.c's
/// QCowHeader): magic "QFI\xfb", version 1, backing file name (offset, length), mtime, virtual size in bytes,
/// cluster_bits, l2_bits (entries per L2 table, as a power of two), crypt_method (0 none, 1 AES) and the L1 table offset.
/// </summary>
internal readonly record struct QcowV1Header(
    uint Version,
    ulong BackingFileOffset,
    uint BackingFileSize,
    uint MtimeSeconds,
    ulong SizeBytes,
    byte ClusterBits,
    byte L2Bits,
    uint CryptMethod,
    ulong L1TableOffset)
{
    public const uint Magic = 0x514649fb;
    public const uint SupportedVersion = 1;
    public const int SizeBytesOnDisk = L1TableOffsetField + sizeof(ulong);

    public const uint CryptNone = 0;
    public const uint CryptAes = 1;

    private const int MagicField = 0;
    private const int VersionField = MagicField + sizeof(uint);
    private const int BackingFileOffsetField = VersionField + sizeof(uint);
    private const int BackingFileSizeField = BackingFileOffsetField + sizeof(ulong);
    private const int MtimeField = BackingFileSizeField + sizeof(uint);
    private const int SizeField = MtimeField + sizeof(uint);
    private const int ClusterBitsField = SizeField + sizeof(ulong);
    private const int L2BitsField = ClusterBitsField + 1;
    private const int PaddingField = L2BitsField + 1;
    private const int CryptMethodField = PaddingField + sizeof(ushort);
    private const int L1TableOffsetField = CryptMethodField + sizeof(uint);

    public int ClusterBytes => 1 << ClusterBits;

    public int L2Entries => 1 << L2Bits;

    /// <summary>Whether the bytes start with the qcow magic and version 1 (QEMU's qcow_probe).</summary>
    public static bool IsQcowV1(ReadOnlySpan<byte> head) =>
        head.Length >= SizeBytesOnDisk
        && BinaryPrimitives.ReadUInt32BigEndian(head[MagicField..]) == Magic
        && BinaryPrimitives.ReadUInt32BigEndian(head[VersionField..]) == SupportedVersion;

    /// <summary>Parses and range-checks the header (QEMU's limits: clusters of 512 B to 64 KiB, L2 tables of 512 B to 64 KiB).</summary>
    public static QcowV1Header Read(ReadOnlySpan<byte> bytes, string? fileName)
    {
        if (bytes.Length < SizeBytesOnDisk || BinaryPrimitives.ReadUInt32BigEndian(bytes[MagicField..]) != Magic)
        {
            throw new ImageFormatException("image not in qcow format", fileName);
        }

        var header = new QcowV1Header(
            BinaryPrimitives.ReadUInt32BigEndian(bytes[VersionField..]),
            BinaryPrimitives.ReadUInt64BigEndian(bytes[BackingFileOffsetField..]),
            BinaryPrimitives.ReadUInt32BigEndian(bytes[BackingFileSizeField..]),
            BinaryPrimitives.ReadUInt32BigEndian(bytes[MtimeField..]),
            BinaryPrimitives.ReadUInt64BigEndian(bytes[SizeField..]),
            bytes[ClusterBitsField],
            bytes[L2BitsField],
            BinaryPrimitives.ReadUInt32BigEndian(bytes[CryptMethodField..]),
            BinaryPrimitives.ReadUInt64BigEndian(bytes[L1TableOffsetField..]));
        if (header.Version != SupportedVersion)
        {
            throw new UnsupportedFeatureException(
                $"qcow (v1) does not support qcow version {header.Version}" + (header.Version is 2 or 3 ? " (it is a qcow2 image)" : string.Empty),
                fileName);
        }

        if (header.SizeBytes <= 1)
        {
            throw new ImageFormatException("image size is too small (must be at least 2 bytes)", fileName);
        }

        if (header.SizeBytes > (ulong)QcowV1Limits.MaxSizeBytes)
        {
            throw new ImageFormatException($"image size {header.SizeBytes} is larger than the largest supported ({QcowV1Limits.MaxSizeBytes} bytes)", fileName);
        }

        if (header.ClusterBits is < QcowV1Limits.MinClusterBits or > QcowV1Limits.MaxClusterBits)
        {
            throw new ImageFormatException("cluster size must be between 512 and 64k", fileName);
        }

        if (header.L2Bits is < QcowV1Limits.MinL2Bits or > QcowV1Limits.MaxL2Bits)
        {
            throw new ImageFormatException("L2 table size must be between 512 and 64k", fileName);
        }

        return header;
    }

    /// <summary>Writes the header (tests build hostile images from it).</summary>
    public void Write(Span<byte> destination)
    {
        destination[..SizeBytesOnDisk].Clear();
        BinaryPrimitives.WriteUInt32BigEndian(destination[MagicField..], Magic);
        BinaryPrimitives.WriteUInt32BigEndian(destination[VersionField..], Version);
        BinaryPrimitives.WriteUInt64BigEndian(destination[BackingFileOffsetField..], BackingFileOffset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[BackingFileSizeField..], BackingFileSize);
        BinaryPrimitives.WriteUInt32BigEndian(destination[MtimeField..], MtimeSeconds);
        BinaryPrimitives.WriteUInt64BigEndian(destination[SizeField..], SizeBytes);
        destination[ClusterBitsField] = ClusterBits;
        destination[L2BitsField] = L2Bits;
        BinaryPrimitives.WriteUInt32BigEndian(destination[CryptMethodField..], CryptMethod);
        BinaryPrimitives.WriteUInt64BigEndian(destination[L1TableOffsetField..], L1TableOffset);
    }
}

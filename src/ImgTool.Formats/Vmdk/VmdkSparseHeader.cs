using System.Buffers.Binary;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vmdk;

/// <summary>
/// The SparseExtentHeader of a hosted sparse extent (VMware "Virtual Disk Format 1.1", section "Hosted Sparse
/// Extent Header"): one little-endian sector at the start of the extent file, and again as the footer of a
/// streamOptimized extent whose grain directory is at the end.
/// </summary>
internal readonly record struct VmdkSparseHeader(
    uint Version,
    uint Flags,
    ulong CapacitySectors,
    ulong GrainSectors,
    ulong DescriptorOffsetSectors,
    ulong DescriptorSizeSectors,
    uint GtesPerGt,
    ulong RgdOffsetSectors,
    ulong GdOffsetSectors,
    ulong OverheadSectors,
    bool UncleanShutdown,
    ushort CompressAlgorithm)
{
    public const int SizeBytes = 512;

    /// <summary>"KDMV" read as a big-endian number, as the file stores the letters in order.</summary>
    public const uint Magic = 0x4B444D56;

    /// <summary>"COWD": the older VMDK3 / ESX vmfsSparse header.</summary>
    public const uint Vmdk3Magic = 0x434F5744;

    public const uint FlagNewLineDetect = 1 << 0;
    public const uint FlagRedundantGrainTable = 1 << 1;
    public const uint FlagZeroedGrain = 1 << 2;
    public const uint FlagCompressed = 1 << 16;
    public const uint FlagMarkers = 1 << 17;

    public const ushort CompressionDeflate = 1;

    /// <summary>gdOffset value meaning "the grain directory is at the end; read the footer" (streamOptimized).</summary>
    public const ulong GdAtEnd = ulong.MaxValue;

    // Field offsets, each following from the one before it (the spec's struct is packed).
    public const int MagicOffset = 0;
    public const int VersionOffset = MagicOffset + 4;
    public const int FlagsOffset = VersionOffset + 4;
    public const int CapacityOffset = FlagsOffset + 4;
    public const int GrainSizeOffset = CapacityOffset + 8;
    public const int DescriptorOffsetOffset = GrainSizeOffset + 8;
    public const int DescriptorSizeOffset = DescriptorOffsetOffset + 8;
    public const int NumGtesPerGtOffset = DescriptorSizeOffset + 8;
    public const int RgdOffsetOffset = NumGtesPerGtOffset + 4;
    public const int GdOffsetOffset = RgdOffsetOffset + 8;
    public const int OverheadOffset = GdOffsetOffset + 8;
    public const int UncleanShutdownOffset = OverheadOffset + 8;
    public const int SingleEndLineCharOffset = UncleanShutdownOffset + 1;
    public const int NonEndLineCharOffset = SingleEndLineCharOffset + 1;
    public const int DoubleEndLineChar1Offset = NonEndLineCharOffset + 1;
    public const int DoubleEndLineChar2Offset = DoubleEndLineChar1Offset + 1;
    public const int CompressAlgorithmOffset = DoubleEndLineChar2Offset + 1;
    public const int PadOffset = CompressAlgorithmOffset + 2;

    public bool HasRedundantGrainTable => (Flags & FlagRedundantGrainTable) != 0;

    public bool HasZeroedGrain => (Flags & FlagZeroedGrain) != 0;

    public bool HasMarkers => (Flags & FlagMarkers) != 0;

    public bool IsCompressed => CompressAlgorithm == CompressionDeflate;

    // The VMDK3 / ESX vmfsSparse ("COWD") header: u32 fields after the magic (QEMU's VMDK3Header).
    public const int CowdVersionOffset = 4;
    public const int CowdFlagsOffset = CowdVersionOffset + 4;
    public const int CowdDiskSectorsOffset = CowdFlagsOffset + 4;
    public const int CowdGranularityOffset = CowdDiskSectorsOffset + 4;
    public const int CowdGdOffsetOffset = CowdGranularityOffset + 4;
    public const int CowdGdEntriesOffset = CowdGdOffsetOffset + 4;

    /// <summary>Grain table entries per table in a COWD extent: fixed at 4096 (QEMU's vmdk_open_vmfs_sparse).</summary>
    public const uint CowdGtesPerGt = 4096;

    public static bool HasCowdMagic(ReadOnlySpan<byte> sector) =>
        sector.Length >= 4 && BinaryPrimitives.ReadUInt32BigEndian(sector) == Vmdk3Magic;

    /// <summary>Reads a COWD header as the equivalent hosted sparse header (4096-entry tables, no redundant directory,
    /// no descriptor); the directory's entry count is given, not derived from the capacity.</summary>
    public static VmdkSparseHeader ReadCowd(ReadOnlySpan<byte> sector, string? fileName, out uint gdEntries)
    {
        if (sector.Length < CowdGdEntriesOffset + 4 || !HasCowdMagic(sector))
        {
            throw new ImageFormatException("not a VMDK3 (COWD) sparse extent (bad magic)", fileName);
        }

        gdEntries = BinaryPrimitives.ReadUInt32LittleEndian(sector[CowdGdEntriesOffset..]);
        return new VmdkSparseHeader(
            BinaryPrimitives.ReadUInt32LittleEndian(sector[CowdVersionOffset..]),
            0,
            BinaryPrimitives.ReadUInt32LittleEndian(sector[CowdDiskSectorsOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(sector[CowdGranularityOffset..]),
            0,
            0,
            CowdGtesPerGt,
            0,
            BinaryPrimitives.ReadUInt32LittleEndian(sector[CowdGdOffsetOffset..]),
            0,
            false,
            0);
    }

    public static bool HasMagic(ReadOnlySpan<byte> sector) =>
        sector.Length >= 4 && BinaryPrimitives.ReadUInt32BigEndian(sector) == Magic;

    public static VmdkSparseHeader Read(ReadOnlySpan<byte> sector, string? fileName)
    {
        if (sector.Length < SizeBytes || !HasMagic(sector))
        {
            throw new ImageFormatException("not a VMDK sparse extent (bad magic)", fileName);
        }

        return new VmdkSparseHeader(
            BinaryPrimitives.ReadUInt32LittleEndian(sector[VersionOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(sector[FlagsOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(sector[CapacityOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(sector[GrainSizeOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(sector[DescriptorOffsetOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(sector[DescriptorSizeOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(sector[NumGtesPerGtOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(sector[RgdOffsetOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(sector[GdOffsetOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(sector[OverheadOffset..]),
            sector[UncleanShutdownOffset] != 0,
            BinaryPrimitives.ReadUInt16LittleEndian(sector[CompressAlgorithmOffset..]));
    }

    /// <summary>Writes the whole sector, with the newline-detection bytes that let VMware spot FTP text-mode damage.</summary>
    public void Write(Span<byte> sector)
    {
        sector[..SizeBytes].Clear();
        BinaryPrimitives.WriteUInt32BigEndian(sector[MagicOffset..], Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[VersionOffset..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[FlagsOffset..], Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(sector[CapacityOffset..], CapacitySectors);
        BinaryPrimitives.WriteUInt64LittleEndian(sector[GrainSizeOffset..], GrainSectors);
        BinaryPrimitives.WriteUInt64LittleEndian(sector[DescriptorOffsetOffset..], DescriptorOffsetSectors);
        BinaryPrimitives.WriteUInt64LittleEndian(sector[DescriptorSizeOffset..], DescriptorSizeSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[NumGtesPerGtOffset..], GtesPerGt);
        BinaryPrimitives.WriteUInt64LittleEndian(sector[RgdOffsetOffset..], RgdOffsetSectors);
        BinaryPrimitives.WriteUInt64LittleEndian(sector[GdOffsetOffset..], GdOffsetSectors);
        BinaryPrimitives.WriteUInt64LittleEndian(sector[OverheadOffset..], OverheadSectors);
        sector[UncleanShutdownOffset] = UncleanShutdown ? (byte)1 : (byte)0;
        sector[SingleEndLineCharOffset] = (byte)'\n';
        sector[NonEndLineCharOffset] = (byte)' ';
        sector[DoubleEndLineChar1Offset] = (byte)'\r';
        sector[DoubleEndLineChar2Offset] = (byte)'\n';
        BinaryPrimitives.WriteUInt16LittleEndian(sector[CompressAlgorithmOffset..], CompressAlgorithm);
    }
}

/// <summary>
/// Stream markers of a streamOptimized extent (VMware "Virtual Disk Format 1.1", "Stream-Optimized Compressed
/// Sparse Extents"): a grain marker is lba (u64) + size (u32) + compressed data; a metadata marker is
/// numSectors (u64) + size 0 (u32) + type (u32), padded to a sector, followed by numSectors of metadata.
/// </summary>
internal static class VmdkMarker
{
    public const int ValueOffset = 0;
    public const int SizeOffset = ValueOffset + 8;
    public const int TypeOffset = SizeOffset + 4;

    /// <summary>Bytes before the compressed data of a grain marker.</summary>
    public const int GrainHeaderBytes = SizeOffset + 4;

    public const uint EndOfStream = 0;
    public const uint GrainTable = 1;
    public const uint GrainDirectory = 2;
    public const uint Footer = 3;

    public static void WriteMetadata(Span<byte> sector, ulong numSectors, uint type)
    {
        sector[..VmdkLimits.SectorBytes].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(sector[ValueOffset..], numSectors);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[SizeOffset..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(sector[TypeOffset..], type);
    }

    public static bool IsMetadata(ReadOnlySpan<byte> sector, uint type, out ulong numSectors)
    {
        numSectors = BinaryPrimitives.ReadUInt64LittleEndian(sector[ValueOffset..]);
        return BinaryPrimitives.ReadUInt32LittleEndian(sector[SizeOffset..]) == 0
            && BinaryPrimitives.ReadUInt32LittleEndian(sector[TypeOffset..]) == type;
    }
}

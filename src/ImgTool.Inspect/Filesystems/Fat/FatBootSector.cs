using System.Buffers.Binary;

namespace ImgTool.Inspect.Filesystems.Fat;

public enum FatKind
{
    Fat12,
    Fat16,
    Fat32,
}

/// <summary>The BIOS parameter block of a FAT boot sector (Microsoft's FAT specification, "fatgen103", section 3),
/// with the layout derived from it. The FAT type follows from the count of clusters, as the specification says.</summary>
internal sealed record FatBootSector(
    int BytesPerSector,
    int SectorsPerCluster,
    int ReservedSectors,
    int FatCount,
    int RootEntryCount,
    long TotalSectors,
    long SectorsPerFat,
    uint RootCluster,
    FatKind Kind,
    long ClusterCount,
    uint VolumeId,
    string? BootLabel)
{
    private const int BytesPerSectorField = 11;
    private const int SectorsPerClusterField = 13;
    private const int ReservedSectorsField = 14;
    private const int FatCountField = 16;
    private const int RootEntryCountField = 17;
    private const int TotalSectors16Field = 19;
    private const int MediaField = 21;
    private const int SectorsPerFat16Field = 22;
    private const int TotalSectors32Field = 32;
    private const int SectorsPerFat32Field = 36;
    private const int RootClusterField = 44;
    private const int VolumeId16Field = 39;
    private const int Label16Field = 43;
    private const int VolumeId32Field = 67;
    private const int Label32Field = 71;

    /// <summary>FAT12 volumes have fewer clusters than this, FAT16 fewer than <see cref="MaxFat16Clusters"/>.</summary>
    private const int MaxFat12Clusters = 4085;
    private const int MaxFat16Clusters = 65525;

    public long FatOffsetBytes => (long)ReservedSectors * BytesPerSector;

    public long RootDirOffsetBytes => FatOffsetBytes + FatCount * SectorsPerFat * BytesPerSector;

    public long RootDirBytes => RootEntryCount * 32L;

    public long DataOffsetBytes => RootDirOffsetBytes + ((RootDirBytes + BytesPerSector - 1) / BytesPerSector * BytesPerSector);

    public int ClusterBytes => BytesPerSector * SectorsPerCluster;

    /// <summary>Null when the sector is not a plausible FAT boot sector (the checks libblkid's vfat prober makes).</summary>
    public static FatBootSector? TryRead(ReadOnlySpan<byte> s)
    {
        if (s[0] != 0xEB && s[0] != 0xE9)
        {
            return null;
        }

        int bytesPerSector = BinaryPrimitives.ReadUInt16LittleEndian(s[BytesPerSectorField..]);
        int sectorsPerCluster = s[SectorsPerClusterField];
        int reserved = BinaryPrimitives.ReadUInt16LittleEndian(s[ReservedSectorsField..]);
        int fats = s[FatCountField];
        byte media = s[MediaField];
        if (bytesPerSector is not (512 or 1024 or 2048 or 4096) || sectorsPerCluster == 0 || !int.IsPow2(sectorsPerCluster)
            || reserved == 0 || fats is 0 or > 4 || (media != 0xF0 && media < 0xF8))
        {
            return null;
        }

        int rootEntries = BinaryPrimitives.ReadUInt16LittleEndian(s[RootEntryCountField..]);
        long totalSectors = BinaryPrimitives.ReadUInt16LittleEndian(s[TotalSectors16Field..]);
        if (totalSectors == 0)
        {
            totalSectors = BinaryPrimitives.ReadUInt32LittleEndian(s[TotalSectors32Field..]);
        }

        long fatSectors = BinaryPrimitives.ReadUInt16LittleEndian(s[SectorsPerFat16Field..]);
        bool fat32Layout = fatSectors == 0;
        if (fat32Layout)
        {
            fatSectors = BinaryPrimitives.ReadUInt32LittleEndian(s[SectorsPerFat32Field..]);
        }

        long rootSectors = ((rootEntries * 32L) + bytesPerSector - 1) / bytesPerSector;
        long dataSectors = totalSectors - reserved - (fats * fatSectors) - rootSectors;
        if (fatSectors == 0 || dataSectors <= 0)
        {
            return null;
        }

        long clusters = dataSectors / sectorsPerCluster;
        FatKind kind = fat32Layout ? FatKind.Fat32 : clusters < MaxFat12Clusters ? FatKind.Fat12 : FatKind.Fat16;
        _ = MaxFat16Clusters;
        int idField = kind == FatKind.Fat32 ? VolumeId32Field : VolumeId16Field;
        int labelField = kind == FatKind.Fat32 ? Label32Field : Label16Field;
        string? label = Disk.Text.NulTerminated(s.Slice(labelField, 11), trimSpaces: true);
        return new FatBootSector(
            bytesPerSector,
            sectorsPerCluster,
            reserved,
            fats,
            rootEntries,
            totalSectors,
            fatSectors,
            kind == FatKind.Fat32 ? BinaryPrimitives.ReadUInt32LittleEndian(s[RootClusterField..]) : 0,
            kind,
            clusters,
            BinaryPrimitives.ReadUInt32LittleEndian(s[idField..]),
            label == "NO NAME" ? null : label);
    }
}

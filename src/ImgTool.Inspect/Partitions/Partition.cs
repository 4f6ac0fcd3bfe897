namespace ImgTool.Inspect.Partitions;

/// <summary>One partition as `sfdisk --json` lists it.</summary>
/// <param name="Number">The partition number (MBR: slot 1-4, logical partitions from 5; GPT: the entry index + 1).</param>
/// <param name="Type">MBR: the type byte in sfdisk's hex ("83", "ef", "5"); GPT: the type GUID in capitals.</param>
/// <param name="Uuid">GPT: the partition's unique GUID in capitals.</param>
/// <param name="Name">GPT: the partition name.</param>
/// <param name="IsContainer">An MBR extended partition, holding the logical ones.</param>
/// <param name="Problem">What is wrong with the entry (past the end of the disk, overlapping), or null.</param>
public sealed record Partition(
    int Number,
    long StartSector,
    long SectorCount,
    string Type,
    string TypeName,
    bool Bootable = false,
    string? Uuid = null,
    string? Name = null,
    ulong Attributes = 0,
    bool IsContainer = false,
    string? Problem = null)
{
    public const int SectorBytes = 512;

    public long StartBytes => StartSector * SectorBytes;

    public long SizeBytes => SectorCount * SectorBytes;
}

/// <summary>The state of one GPT header: good, or what is wrong with it.</summary>
public sealed record GptHeaderState(long Lba, bool Valid, string? Problem);

/// <summary>A partition table as sfdisk reads it, with what imgtool checked on the way.</summary>
/// <param name="Label">"dos" or "gpt", sfdisk's names.</param>
/// <param name="Id">dos: the disk signature as "0x1234abcd"; gpt: the disk GUID in capitals.</param>
/// <param name="HybridMbr">GPT with an MBR that lists more than the protective 0xEE entry.</param>
/// <param name="Primary">GPT: the primary header at LBA 1.</param>
/// <param name="Backup">GPT: the backup header at the last LBA.</param>
/// <param name="UsedBackup">GPT: the primary header or its entries were bad, so the backup was read.</param>
public sealed record PartitionTable(
    string Label,
    string Id,
    IReadOnlyList<Partition> Partitions,
    long? FirstLba = null,
    long? LastLba = null,
    bool HybridMbr = false,
    GptHeaderState? Primary = null,
    GptHeaderState? Backup = null,
    bool UsedBackup = false,
    IReadOnlyList<string>? Warnings = null);

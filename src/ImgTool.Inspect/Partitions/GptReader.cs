using System.Buffers.Binary;
using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Partitions;

/// <summary>GPT (UEFI 2.10, 5.3): the primary header at LBA 1 and its entry array, the backup header at the last LBA
/// with its own array. Both headers and both arrays are checked by CRC32; when the primary is bad the backup is
/// used, as firmware and sfdisk do, and the table says so.</summary>
internal static class GptReader
{
    private const int TypeGuidField = 0;
    private const int UniqueGuidField = 16;
    private const int FirstLbaField = 32;
    private const int LastLbaField = 40;
    private const int AttributesField = 48;
    private const int NameField = 56;
    private const int NameBytes = 72;

    public static async ValueTask<PartitionTable?> ReadAsync(DiskView disk, byte[] mbr, CancellationToken cancellationToken)
    {
        int sector = Partition.SectorBytes;
        long lastLba = (disk.LengthBytes / sector) - 1;
        if (lastLba < 2)
        {
            return null;
        }

        var (primary, primaryProblem, primaryEntries) = await ReadHeaderAsync(disk, 1, cancellationToken).ConfigureAwait(false);
        var (backup, backupProblem, backupEntries) = await ReadHeaderAsync(disk, lastLba, cancellationToken).ConfigureAwait(false);
        bool hasProtective = MbrReader.HasSignature(mbr) && MbrReader.Entries(mbr).Any(e => e.Type == PartitionTypes.GptProtective);
        if (primaryProblem is not null && backupProblem is not null && !hasProtective)
        {
            return null; // no GPT at all: an MBR disk or a bare file system
        }

        var warnings = new List<string>();
        if (primaryProblem is null && backupProblem is null && primaryEntries!.Value.Crc != backupEntries!.Value.Crc)
        {
            warnings.Add("the primary and backup partition entry arrays differ");
        }

        if (primaryProblem is not null && backupProblem is null)
        {
            warnings.Add($"the primary GPT header is corrupt ({primaryProblem}); using the backup at LBA {lastLba}");
        }
        else if (backupProblem is not null && primaryProblem is null)
        {
            warnings.Add($"the backup GPT header at LBA {lastLba} is corrupt ({backupProblem})");
        }
        else if (primaryProblem is not null)
        {
            warnings.Add($"both GPT headers are corrupt (primary: {primaryProblem}; backup: {backupProblem})");
        }

        var entries = primaryProblem is null ? primaryEntries : backupEntries;
        GptHeader used = primaryProblem is null ? primary : backup;
        var partitions = new List<Partition>();
        if (entries is { } array)
        {
            for (int i = 0; i < used.EntryCount; i++)
            {
                ReadOnlySpan<byte> e = array.Bytes.AsSpan(i * (int)used.EntryBytes, (int)used.EntryBytes);
                var type = new Guid(e.Slice(TypeGuidField, 16));
                if (type == Guid.Empty)
                {
                    continue;
                }

                long first = BinaryPrimitives.ReadInt64LittleEndian(e[FirstLbaField..]);
                long last = BinaryPrimitives.ReadInt64LittleEndian(e[LastLbaField..]);
                string typeText = type.ToString("D").ToUpperInvariant();
                string? problem = first < used.FirstUsableLba || last > used.LastUsableLba || last < first ? "lies outside the usable area of the disk" : null;
                partitions.Add(new Partition(
                    i + 1,
                    first,
                    last >= first ? last - first + 1 : 0,
                    typeText,
                    PartitionTypes.GptName(typeText),
                    Uuid: new Guid(e.Slice(UniqueGuidField, 16)).ToString("D").ToUpperInvariant(),
                    Name: Text.Utf16(e.Slice(NameField, NameBytes)),
                    Attributes: BinaryPrimitives.ReadUInt64LittleEndian(e[AttributesField..]),
                    Problem: problem));
            }
        }

        bool hybrid = MbrReader.HasSignature(mbr) && MbrReader.Entries(mbr).Any(e => e.Type != PartitionTypes.GptProtective) && hasProtective;
        return new PartitionTable(
            "gpt",
            used.DiskGuid.ToString("D").ToUpperInvariant(),
            partitions,
            entries is null ? null : used.FirstUsableLba,
            entries is null ? null : used.LastUsableLba,
            hybrid,
            new GptHeaderState(1, primaryProblem is null, primaryProblem),
            new GptHeaderState(lastLba, backupProblem is null, backupProblem),
            UsedBackup: primaryProblem is not null && backupProblem is null,
            warnings);
    }

    private static async ValueTask<(GptHeader Header, string? Problem, (byte[] Bytes, uint Crc)? Entries)> ReadHeaderAsync(DiskView disk, long lba, CancellationToken cancellationToken)
    {
        int sector = Partition.SectorBytes;
        byte[] bytes = await disk.ReadBytesAsync(lba * sector, sector, "GPT header", cancellationToken).ConfigureAwait(false);
        var (header, problem) = GptHeader.Read(bytes, lba);
        if (problem is not null)
        {
            return (header, problem, null);
        }

        long arrayBytes = (long)header.EntryCount * header.EntryBytes;
        if (header.EntriesLba < 0 || header.EntriesLba > long.MaxValue / sector || !disk.Contains(header.EntriesLba * sector, arrayBytes))
        {
            return (header, $"partition entry array at LBA {header.EntriesLba} lies outside the disk", null);
        }

        byte[] array = await disk.ReadBytesAsync(header.EntriesLba * sector, (int)arrayBytes, "GPT partition entries", cancellationToken).ConfigureAwait(false);
        uint crc = Disk.Crc32.Compute(array);
        if (crc != header.EntriesCrc)
        {
            return (header, $"partition entry array CRC32 mismatch (stored 0x{header.EntriesCrc:x8}, computed 0x{crc:x8})", null);
        }

        return (header, null, (array, crc));
    }
}

using System.Buffers.Binary;
using System.Globalization;
using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Partitions;

/// <summary>The MBR partition table: four 16-byte entries at byte 446 and the 0x55AA signature, the disk signature at
/// byte 440, and extended partitions as a chain of EBRs (each with a logical partition relative to itself and a link
/// to the next EBR relative to the extended partition's start).</summary>
internal static class MbrReader
{
    public const int SignatureField = 510;
    private const int DiskIdField = 440;
    private const int EntriesField = 446;
    private const int EntryBytes = 16;
    private const int TypeField = 4;
    private const int StartField = 8;
    private const int CountField = 12;

    /// <summary>More logical partitions than this is a loop or a hostile chain (Linux stops far lower in practice).</summary>
    public const int MaxLogicalPartitions = 256;

    public static bool HasSignature(ReadOnlySpan<byte> sector) => sector[SignatureField] == 0x55 && sector[SignatureField + 1] == 0xAA;

    /// <summary>The primary entries as (slot, boot flag, type, start, count), empty slots left out.</summary>
    public static List<(int Slot, byte Flag, byte Type, long Start, long Count)> Entries(ReadOnlySpan<byte> sector)
    {
        var entries = new List<(int, byte, byte, long, long)>();
        for (int i = 0; i < 4; i++)
        {
            ReadOnlySpan<byte> e = sector.Slice(EntriesField + (i * EntryBytes), EntryBytes);
            byte type = e[TypeField];
            long count = BinaryPrimitives.ReadUInt32LittleEndian(e[CountField..]);
            if (type != 0 && count != 0)
            {
                entries.Add((i + 1, e[0], type, BinaryPrimitives.ReadUInt32LittleEndian(e[StartField..]), count));
            }
        }

        return entries;
    }

    /// <summary>True when the sector holds a partition table rather than a file system's boot sector:
    /// the boot flags are 0 or 0x80 and there is at least one entry (libblkid's dos prober makes the same checks).</summary>
    public static bool LooksLikeTable(ReadOnlySpan<byte> sector)
    {
        if (!HasSignature(sector))
        {
            return false;
        }

        for (int i = 0; i < 4; i++)
        {
            byte flag = sector[EntriesField + (i * EntryBytes)];
            if (flag is not (0 or 0x80))
            {
                return false;
            }
        }

        return Entries(sector).Count > 0;
    }

    public static async ValueTask<PartitionTable> ReadAsync(DiskView disk, byte[] mbr, CancellationToken cancellationToken)
    {
        long diskSectors = disk.LengthBytes / Partition.SectorBytes;
        var partitions = new List<Partition>();
        var warnings = new List<string>();
        foreach (var (slot, flag, type, start, count) in Entries(mbr))
        {
            bool container = PartitionTypes.IsExtended(type);
            partitions.Add(new Partition(slot, start, count, type.ToString("x", CultureInfo.InvariantCulture), PartitionTypes.MbrName(type),
                flag == 0x80, IsContainer: container, Problem: start + count > diskSectors ? "ends past the end of the disk" : null));
            if (container)
            {
                await ReadLogicalAsync(disk, start, count, partitions, warnings, cancellationToken).ConfigureAwait(false);
            }
        }

        string id = "0x" + BinaryPrimitives.ReadUInt32LittleEndian(mbr.AsSpan(DiskIdField)).ToString("x8", CultureInfo.InvariantCulture);
        return new PartitionTable("dos", id, partitions, Warnings: warnings);
    }

    private static async ValueTask ReadLogicalAsync(DiskView disk, long extendedStart, long extendedCount, List<Partition> partitions, List<string> warnings, CancellationToken cancellationToken)
    {
        var seen = new HashSet<long>();
        long ebr = extendedStart;
        for (int number = 5; ; number++)
        {
            if (number - 5 >= MaxLogicalPartitions || !seen.Add(ebr))
            {
                warnings.Add($"the chain of logical partitions loops or is longer than {MaxLogicalPartitions}; stopped at partition {number - 1}");
                return;
            }

            if ((ebr + 1) * Partition.SectorBytes > disk.LengthBytes || ebr < extendedStart || ebr >= extendedStart + extendedCount)
            {
                warnings.Add($"the extended boot record of partition {number} at sector {ebr} lies outside the extended partition or the disk");
                return;
            }

            byte[] sector = await disk.ReadBytesAsync(ebr * Partition.SectorBytes, Partition.SectorBytes, "extended boot record", cancellationToken).ConfigureAwait(false);
            if (!HasSignature(sector))
            {
                warnings.Add($"the extended boot record at sector {ebr} has no 0x55AA signature");
                return;
            }

            List<(int Slot, byte Flag, byte Type, long Start, long Count)> entries = Entries(sector);
            var logical = entries.FirstOrDefault(e => e.Slot == 1);
            if (logical.Type != 0 && !PartitionTypes.IsExtended(logical.Type))
            {
                long start = ebr + logical.Start;
                partitions.Add(new Partition(number, start, logical.Count, logical.Type.ToString("x", CultureInfo.InvariantCulture), PartitionTypes.MbrName(logical.Type),
                    logical.Flag == 0x80, Problem: start + logical.Count > extendedStart + extendedCount ? "ends past the end of its extended partition" : null));
            }

            var link = entries.FirstOrDefault(e => e.Slot == 2);
            if (link.Type == 0 || !PartitionTypes.IsExtended(link.Type))
            {
                return;
            }

            ebr = extendedStart + link.Start;
        }
    }
}

using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Partitions;

/// <summary>Finds the partition table of a disk: GPT first (its protective MBR would otherwise be read as a table
/// with one 0xEE partition), then MBR; null when sector 0 holds no table (a whole-disk file system, or nothing).</summary>
public static class PartitionTableReader
{
    public static async ValueTask<PartitionTable?> ReadAsync(DiskView disk, CancellationToken cancellationToken)
    {
        if (disk.LengthBytes < Partition.SectorBytes)
        {
            return null;
        }

        byte[] mbr = await disk.ReadBytesAsync(0, Partition.SectorBytes, "MBR", cancellationToken).ConfigureAwait(false);
        if (await GptReader.ReadAsync(disk, mbr, cancellationToken).ConfigureAwait(false) is { } gpt)
        {
            return gpt;
        }

        return MbrReader.LooksLikeTable(mbr) ? await MbrReader.ReadAsync(disk, mbr, cancellationToken).ConfigureAwait(false) : null;
    }
}
